package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where things are in the image.
const (
	BinaryPath  = "/usr/local/bin/sortie"
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	DataDir     = "/var/lib/sortie"
	User        = "65532:65532"
	uid         = 65532
)

// The OCI annotation and label keys used.
const (
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelSource   = "org.opencontainers.image.source"
	LabelTitle    = "org.opencontainers.image.title"
	LabelCreated  = "org.opencontainers.image.created"
	RefName       = "org.opencontainers.image.ref.name"
	// SBOMPlatform marks an SBOM's descriptor in index.json with the
	// platform of the image it describes.
	SBOMPlatform = "dev.sortie.sbom.platform"
	// SBOMMediaType is the SPDX JSON media type, the artifact type of an
	// SBOM's manifest and the media type of its one layer.
	SBOMMediaType  = "application/spdx+json"
	emptyMediaType = "application/vnd.oci.empty.v1+json"
)

// Binary is one platform's static sortie binary.
type Binary struct{ OS, Arch, Path string }

// BuildOptions say what to build and where.
type BuildOptions struct {
	Layout   string
	Binaries []Binary
	CACerts  string
	// Repository, Version, Revision and Source name the image.
	Repository, Version, Revision, Source string
	// Created is the creation time in seconds since the epoch, used for
	// every timestamp: the same inputs make the same digests.
	Created int64
}

// Build writes the multi-platform image and its SBOMs into o.Layout,
// replacing what was there.
func Build(o BuildOptions) error {
	switch {
	case o.Layout == "":
		return errors.New("--layout is required")
	case len(o.Binaries) == 0:
		return errors.New("at least one --binary OS/ARCH=PATH is required")
	case o.Version == "" || o.Revision == "" || o.Source == "" || o.Repository == "":
		return errors.New("--repository, --version, --revision and --source are required")
	}
	created := time.Unix(o.Created, 0).UTC()
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return fmt.Errorf("CA certificates (Debian: apt-get install ca-certificates): %w", err)
	}
	if b, _ := pem.Decode(certs); b == nil {
		return fmt.Errorf("CA certificates: %s holds no PEM certificate", o.CACerts)
	}
	base, err := layer(created, baseFiles(certs))
	if err != nil {
		return err
	}
	labels := map[string]string{
		LabelVersion: o.Version, LabelRevision: o.Revision, LabelSource: o.Source,
		LabelTitle: "sortie", LabelCreated: created.Format(time.RFC3339),
	}
	type built struct {
		img  v1.Image
		plat v1.Platform
		sbom []byte
	}
	var images []built
	for _, b := range o.Binaries {
		bin, err := os.ReadFile(b.Path)
		if err != nil {
			return fmt.Errorf("binary for %s/%s: %w", b.OS, b.Arch, err)
		}
		sbom, err := SBOM(b.Path, o, created)
		if err != nil {
			return err
		}
		top, err := layer(created, []file{{name: BinaryPath, mode: 0o755, data: bin}})
		if err != nil {
			return err
		}
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		if img, err = mutate.AppendLayers(img, base, top); err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture, cf.Created = b.OS, b.Arch, v1.Time{Time: created}
		cf.Author = o.Source
		cf.Config = v1.Config{
			User:       User,
			Entrypoint: []string{BinaryPath},
			WorkingDir: "/home/nonroot",
			Env: []string{
				"PATH=/usr/local/bin",
				"HOME=/home/nonroot",
				"SORTIE_DATA_DIR=" + DataDir,
			},
			Labels: labels,
		}
		cf.History = []v1.History{
			{Created: v1.Time{Time: created}, CreatedBy: "sortie image: CA certificates, nonroot user, directories"},
			{Created: v1.Time{Time: created}, CreatedBy: "sortie image: " + BinaryPath},
		}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return err
		}
		img = mutate.Annotations(img, labels).(v1.Image)
		images = append(images, built{img: img, plat: v1.Platform{OS: b.OS, Architecture: b.Arch}, sbom: sbom})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, b := range images {
		plat := b.plat
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: b.img, Descriptor: v1.Descriptor{Platform: &plat}})
	}
	idx = mutate.Annotations(idx, labels).(v1.ImageIndex)

	if err := os.RemoveAll(o.Layout); err != nil {
		return err
	}
	p, err := layout.Write(o.Layout, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefName: o.Version})); err != nil {
		return err
	}
	for _, b := range images {
		if err := appendSBOM(p, b.img, b.plat, b.sbom, created); err != nil {
			return err
		}
	}
	// The full name for tools and for make image-push to read back.
	return os.WriteFile(filepath.Join(o.Layout, "image-name"), []byte(o.Repository+":"+o.Version+"\n"), 0o644)
}

// appendSBOM stores the SBOM as an OCI artifact manifest (empty config,
// one layer of SPDX JSON) whose subject is the platform's image manifest,
// and lists it in index.json marked with the platform.
func appendSBOM(p layout.Path, img v1.Image, plat v1.Platform, sbom []byte, created time.Time) error {
	subject, err := partialDescriptor(img)
	if err != nil {
		return err
	}
	emptyBlob := []byte("{}")
	config, err := writeBlob(p, emptyBlob, emptyMediaType)
	if err != nil {
		return err
	}
	layer, err := writeBlob(p, sbom, SBOMMediaType)
	if err != nil {
		return err
	}
	layer.Annotations = map[string]string{LabelTitle: "sbom.spdx.json"}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  SBOMMediaType,
		Config:        config,
		Layers:        []v1.Descriptor{layer},
		Subject:       &subject,
		Annotations:   map[string]string{LabelCreated: created.Format(time.RFC3339)},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	desc, err := writeBlob(p, raw, string(types.OCIManifestSchema1))
	if err != nil {
		return err
	}
	desc.ArtifactType = SBOMMediaType
	desc.Annotations = map[string]string{SBOMPlatform: plat.OS + "/" + plat.Architecture}
	return p.AppendDescriptor(desc)
}

func partialDescriptor(img v1.Image) (v1.Descriptor, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	n, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: n}, nil
}

func writeBlob(p layout.Path, b []byte, mediaType string) (v1.Descriptor, error) {
	sum := sha256.Sum256(b)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if err := p.WriteBlob(h, io.NopCloser(bytes.NewReader(b))); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: types.MediaType(mediaType), Digest: h, Size: int64(len(b))}, nil
}

// file is an entry of a layer: a directory when data is nil and dir is set.
type file struct {
	name     string
	mode     int64
	data     []byte
	dir      bool
	uid, gid int
}

// baseFiles are what every platform shares: certificates, the user, and
// the directories it writes to.
func baseFiles(certs []byte) []file {
	return []file{
		{name: "/etc", dir: true, mode: 0o755},
		{name: "/etc/ssl", dir: true, mode: 0o755},
		{name: "/etc/ssl/certs", dir: true, mode: 0o755},
		{name: CACertsPath, mode: 0o644, data: certs},
		{name: "/etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "/home", dir: true, mode: 0o755},
		{name: "/home/nonroot", dir: true, mode: 0o700, uid: uid, gid: uid},
		{name: "/tmp", dir: true, mode: 0o1777},
		{name: "/usr", dir: true, mode: 0o755},
		{name: "/usr/local", dir: true, mode: 0o755},
		{name: "/usr/local/bin", dir: true, mode: 0o755},
		{name: "/var", dir: true, mode: 0o755},
		{name: "/var/lib", dir: true, mode: 0o755},
		{name: DataDir, dir: true, mode: 0o700, uid: uid, gid: uid},
	}
}

// layer makes a gzip'd tar layer of files, every time stamp created.
func layer(created time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name: f.name[1:], Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: created,
			Typeflag: tar.TypeReg, Size: int64(len(f.data)), Format: tar.FormatPAX,
		}
		if f.dir {
			h.Name += "/"
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}
