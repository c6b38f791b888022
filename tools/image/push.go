package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push sends the layout's image index (both platforms) to the registry as
// to (the layout's tag when to has none), then each SBOM artifact by digest:
// a registry with the OCI referrers API lists it under its image. The
// credentials are the Docker config's (docker login, or a credential
// helper).
//
// It is not exercised by the tests: no registry is reachable there.
func Push(layoutDir, to string) error {
	if layoutDir == "" || to == "" {
		return errors.New("--layout and --to are required")
	}
	p, err := layout.FromPath(layoutDir)
	if err != nil {
		return err
	}
	root, err := p.ImageIndex()
	if err != nil {
		return err
	}
	im, err := root.IndexManifest()
	if err != nil {
		return err
	}
	var idx v1.ImageIndex
	var tag string
	var sboms []v1.Descriptor
	for _, d := range im.Manifests {
		switch {
		case d.Annotations[RefName] != "":
			if idx, err = root.ImageIndex(d.Digest); err != nil {
				return err
			}
			tag = d.Annotations[RefName]
		case d.ArtifactType == SBOMMediaType:
			sboms = append(sboms, d)
		}
	}
	if idx == nil {
		return fmt.Errorf("%s holds no tagged image index: run make image", layoutDir)
	}
	if !strings.Contains(to[strings.LastIndex(to, "/")+1:], ":") {
		to += ":" + tag
	}
	ref, err := name.ParseReference(to)
	if err != nil {
		return err
	}
	opts := []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	if err := remote.WriteIndex(ref, idx, opts...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	fmt.Printf("pushed %s\n", ref)
	for _, d := range sboms {
		img, err := root.Image(d.Digest)
		if err != nil {
			return err
		}
		sref := ref.Context().Digest(d.Digest.String())
		if err := remote.Write(sref, img, opts...); err != nil {
			return fmt.Errorf("push the SBOM of %s: %w", d.Annotations[SBOMPlatform], err)
		}
		fmt.Printf("pushed the SBOM of %s as %s\n", d.Annotations[SBOMPlatform], sref)
	}
	return nil
}
