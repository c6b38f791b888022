package main

import (
	"archive/tar"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// layoutDir is the layout `make image` wrote; make image-test says where.
func layoutDir(t *testing.T) string {
	dir := os.Getenv("SORTIE_IMAGE_LAYOUT")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "image", "oci")
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		t.Fatalf("no OCI image layout at %s (%v): run make image (make image-test runs this test after it)", dir, err)
	}
	return dir
}

// TestImageLayout reads the layout `make image` built: one tagged index of
// linux/amd64 and linux/arm64; each image runs sortie as 65532 with the
// OCI labels, holds the CA certificates, the user and a static binary of
// its architecture built with Go's time zone data; an SPDX SBOM of exactly
// the binary's modules is attached to each. The amd64 binary, taken out of
// the layers, runs `sortie version`.
func TestImageLayout(t *testing.T) {
	dir := layoutDir(t)
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	rm, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var tagged []v1.Descriptor
	sboms := map[string]v1.Descriptor{}
	for _, d := range rm.Manifests {
		switch {
		case d.Annotations[RefName] != "":
			tagged = append(tagged, d)
		case d.ArtifactType == SBOMMediaType:
			sboms[d.Annotations[SBOMPlatform]] = d
		default:
			t.Errorf("index.json lists %s (%s), neither the image nor an SBOM", d.Digest, d.MediaType)
		}
	}
	if len(tagged) != 1 {
		t.Fatalf("index.json has %d tagged entries, want 1: %+v", len(tagged), rm.Manifests)
	}
	version := tagged[0].Annotations[RefName]
	if want := os.Getenv("SORTIE_IMAGE_VERSION"); want != "" && version != want {
		t.Errorf("tag %q, want %q", version, want)
	}
	name, err := os.ReadFile(filepath.Join(dir, "image-name"))
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(name)), ":"+version) {
		t.Errorf("image-name %q (%v), want REPOSITORY:%s", name, err, version)
	}
	idx, err := root.ImageIndex(tagged[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			t.Fatalf("manifest %s has no platform", d.Digest)
		}
		plat := d.Platform.OS + "/" + d.Platform.Architecture
		platforms = append(platforms, plat)
		t.Run(plat, func(t *testing.T) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS+"/"+cf.Architecture != plat {
				t.Errorf("config says %s/%s", cf.OS, cf.Architecture)
			}
			c := cf.Config
			if c.User != "65532:65532" {
				t.Errorf("user %q, want 65532:65532 (nonroot)", c.User)
			}
			if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/sortie"}) || len(c.Cmd) != 0 {
				t.Errorf("entrypoint %q cmd %q, want [/usr/local/bin/sortie] and none", c.Entrypoint, c.Cmd)
			}
			if c.Labels[LabelVersion] != version || c.Labels[LabelSource] != "https://github.com/sortie-cd/sortie" ||
				!regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(c.Labels[LabelRevision]) {
				t.Errorf("labels %v", c.Labels)
			}
			if want := os.Getenv("SORTIE_IMAGE_REVISION"); want != "" && c.Labels[LabelRevision] != want {
				t.Errorf("revision label %q, want %q", c.Labels[LabelRevision], want)
			}
			files := extract(t, img)
			checkBase(t, files)
			bin := files["usr/local/bin/sortie"]
			if bin == nil || bin.mode&0o111 == 0 {
				t.Fatalf("no executable usr/local/bin/sortie in the layers")
			}
			path := filepath.Join(t.TempDir(), "sortie")
			if err := os.WriteFile(path, bin.data, 0o755); err != nil {
				t.Fatal(err)
			}
			checkBinary(t, path, d.Platform.Architecture)
			checkSBOM(t, root, sboms[plat], d, path)
			if d.Platform.Architecture == "amd64" {
				out, err := exec.Command(path, "version").CombinedOutput()
				if err != nil || !strings.Contains(string(out), version) || !strings.Contains(string(out), "linux/amd64") {
					t.Errorf("sortie version from the image: %v\n%s\nwant version %s", err, out, version)
				}
				out, err = exec.Command(path, "agent", "manifest", "--agent-id", "prod", "--server", "https://sortie.example.com").CombinedOutput()
				if want := "image: \"" + strings.TrimSpace(string(name)) + "\""; err != nil || !strings.Contains(string(out), want) {
					t.Errorf("sortie agent manifest from the image: %v, want %s in\n%s", err, want, out)
				}
			}
		})
	}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v, want linux/amd64 and linux/arm64", platforms)
	}
}

type entry struct {
	mode     int64
	uid      int
	data     []byte
	dir      bool
	linkname string
}

// extract reads every layer in order into a map of path to entry.
func extract(t *testing.T, img v1.Image) map[string]*entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*entry{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimSuffix(h.Name, "/")] = &entry{mode: h.Mode, uid: h.Uid, data: b, dir: h.Typeflag == tar.TypeDir, linkname: h.Linkname}
		}
		rc.Close()
	}
	return files
}

func checkBase(t *testing.T, files map[string]*entry) {
	t.Helper()
	certs := files["etc/ssl/certs/ca-certificates.crt"]
	if certs == nil {
		t.Fatal("no etc/ssl/certs/ca-certificates.crt")
	}
	n := 0
	for rest := certs.data; ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
	}
	if n < 50 {
		t.Errorf("the CA bundle holds %d certificates", n)
	}
	if p := files["etc/passwd"]; p == nil || !strings.Contains(string(p.data), "nonroot:x:65532:65532:") {
		t.Errorf("etc/passwd has no nonroot 65532")
	}
	for _, d := range []string{"home/nonroot", "var/lib/sortie"} {
		if e := files[d]; e == nil || !e.dir || e.uid != 65532 {
			t.Errorf("%s: %+v, want a directory of 65532", d, e)
		}
	}
	if e := files["tmp"]; e == nil || e.mode&0o1777 != 0o1777 {
		t.Errorf("tmp: %+v, want mode 1777", e)
	}
	for name, e := range files {
		if e.linkname != "" || strings.Contains(name, "..") {
			t.Errorf("unexpected entry %s -> %s", name, e.linkname)
		}
	}
}

// checkBinary: a static ELF of arch, built with the timetzdata tag and
// without cgo.
func checkBinary(t *testing.T, path, arch string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		t.Errorf("ELF machine %v, want %v", f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary is dynamically linked: it would not run from scratch")
		}
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if setting(info, "CGO_ENABLED") != "0" || !strings.Contains(setting(info, "-tags"), "timetzdata") || setting(info, "GOARCH") != arch {
		t.Errorf("build settings %v: want CGO_ENABLED=0, -tags timetzdata, GOARCH=%s", info.Settings, arch)
	}
}

// checkSBOM: the SBOM artifact of the platform's manifest lists exactly the
// binary's modules, with the binary's SHA-256.
func checkSBOM(t *testing.T, root interface {
	Image(v1.Hash) (v1.Image, error)
}, desc, subject v1.Descriptor, binPath string) {
	t.Helper()
	if desc.Digest.Hex == "" {
		t.Fatal("no SBOM in index.json for this platform")
	}
	art, err := root.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := art.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != SBOMMediaType || m.Subject == nil || m.Subject.Digest != subject.Digest || len(m.Layers) != 1 || m.Layers[0].MediaType != SBOMMediaType {
		t.Fatalf("SBOM manifest %+v: want artifactType %s, subject %s, one SPDX layer", m, SBOMMediaType, subject.Digest)
	}
	layers, err := art.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed() // stored as is: not a tar
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var doc spdxDocument
	if err := json.NewDecoder(rc).Decode(&doc); err != nil {
		t.Fatalf("the SBOM is not JSON: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.SPDXID != "SPDXRef-DOCUMENT" || doc.DataLicense != "CC0-1.0" || doc.CreationInfo.Created == "" {
		t.Errorf("SPDX header: %+v", doc)
	}
	info, err := buildinfo.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{info.Main.Path: doc.Packages[1].VersionInfo, "stdlib": strings.TrimPrefix(info.GoVersion, "go")}
	for _, d := range info.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		want[d.Path] = d.Version
	}
	got := map[string]string{}
	for _, p := range doc.Packages[1:] {
		got[p.Name] = p.VersionInfo
		if len(p.ExternalRefs) != 1 || !strings.HasPrefix(p.ExternalRefs[0].Locator, "pkg:golang/") {
			t.Errorf("package %s without a golang purl: %+v", p.Name, p.ExternalRefs)
		}
	}
	if len(got) != len(want) || len(want) < 20 {
		t.Errorf("the SBOM lists %d modules, the binary %d", len(got), len(want))
	}
	for path, v := range want {
		if got[path] != v {
			t.Errorf("module %s: SBOM %q, binary %q", path, got[path], v)
		}
	}
	for _, must := range []string{"github.com/spf13/cobra", "k8s.io/client-go", "google.golang.org/grpc"} {
		if got[must] == "" {
			t.Errorf("the SBOM does not list %s", must)
		}
	}
	b, _ := os.ReadFile(binPath)
	sum := sha256.Sum256(b)
	if bp := doc.Packages[0]; bp.SPDXID != "SPDXRef-Binary" || len(bp.Checksums) != 1 || bp.Checksums[0].Value != hex.EncodeToString(sum[:]) {
		t.Errorf("the SBOM's binary package %+v: want the SHA-256 %x", bp, sum)
	}
}
