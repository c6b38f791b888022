// Command image builds Sortie's container image without a Docker daemon
// (go-containerregistry) into an OCI image layout on disk, and pushes that
// layout to a registry. It is a separate module so that the product's
// go.mod does not carry go-containerregistry; `make image` and
// `make image-push` run it.
//
//	image build --layout DIR --binary linux/amd64=PATH --binary linux/arm64=PATH \
//	  --ca-certs /etc/ssl/certs/ca-certificates.crt --repository NAME --version V \
//	  --revision SHA --source URL --created UNIX
//	image push --layout DIR --to REGISTRY/REPOSITORY[:TAG]
//
// The image, for each platform: from scratch; the CA certificates at
// /etc/ssl/certs/ca-certificates.crt; /etc/passwd and /etc/group with the
// user nonroot (65532); /home/nonroot, /var/lib/sortie (the data directory)
// and /tmp; the static binary at /usr/local/bin/sortie (built with Go's
// embedded time zone data). The entrypoint is sortie, the user 65532, and
// the OCI labels name version, revision and source. Beside each platform's
// manifest the layout holds an SPDX 2.3 SBOM (JSON) of the Go modules in
// its binary, as an OCI artifact whose subject is that manifest.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: image build|push [flags]")
	}
	switch args[0] {
	case "build":
		var o BuildOptions
		var binaries multiFlag
		var created int64
		fs := flag.NewFlagSet("build", flag.ContinueOnError)
		fs.StringVar(&o.Layout, "layout", "", "the OCI image layout directory to write (replaced)")
		fs.Var(&binaries, "binary", "OS/ARCH=PATH of a static sortie binary; repeatable")
		fs.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle to put in the image")
		fs.StringVar(&o.Repository, "repository", "", "the image's repository, such as ghcr.io/sortie-cd/sortie")
		fs.StringVar(&o.Version, "version", "", "the version: the tag and org.opencontainers.image.version")
		fs.StringVar(&o.Revision, "revision", "", "the source revision (org.opencontainers.image.revision)")
		fs.StringVar(&o.Source, "source", "", "the source repository URL (org.opencontainers.image.source)")
		fs.Int64Var(&created, "created", 0, "creation time, seconds since the epoch (the commit's: builds are reproducible)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		for _, b := range binaries {
			platform, path, ok := strings.Cut(b, "=")
			osName, arch, ok2 := strings.Cut(platform, "/")
			if !ok || !ok2 || path == "" {
				return fmt.Errorf("--binary %q: want OS/ARCH=PATH", b)
			}
			o.Binaries = append(o.Binaries, Binary{OS: osName, Arch: arch, Path: path})
		}
		o.Created = created
		return Build(o)
	case "push":
		var layoutDir, to string
		fs := flag.NewFlagSet("push", flag.ContinueOnError)
		fs.StringVar(&layoutDir, "layout", "", "the OCI image layout `make image` wrote")
		fs.StringVar(&to, "to", "", "REGISTRY/REPOSITORY[:TAG] to push to (the tag defaults to the layout's)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return Push(layoutDir, to)
	}
	return fmt.Errorf("unknown command %q: want build or push", args[0])
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
