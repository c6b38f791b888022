package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// spdxDocument is the part of SPDX 2.3 (JSON) an SBOM of Go modules uses.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID           string            `json:"SPDXID"`
	Name             string            `json:"name"`
	VersionInfo      string            `json:"versionInfo,omitempty"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	LicenseConcluded string            `json:"licenseConcluded"`
	LicenseDeclared  string            `json:"licenseDeclared"`
	CopyrightText    string            `json:"copyrightText"`
	Checksums        []spdxChecksum    `json:"checksums,omitempty"`
	ExternalRefs     []spdxExternalRef `json:"externalRefs,omitempty"`
	PrimaryPurpose   string            `json:"primaryPackagePurpose,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// SBOM is the SPDX document of the binary at path: the binary itself (its
// SHA-256), its main module, every module its build information lists
// (replacements followed), and the Go standard library of the toolchain.
// Licenses are NOASSERTION: the build information does not carry them.
func SBOM(path string, o BuildOptions, created time.Time) ([]byte, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("SBOM: build information of %s: %w", path, err)
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(bin)
	goos, goarch := setting(info, "GOOS"), setting(info, "GOARCH")
	doc := spdxDocument{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              fmt.Sprintf("sortie %s %s/%s", o.Version, goos, goarch),
		DocumentNamespace: fmt.Sprintf("%s/spdx/%s/%s-%s/%s", strings.TrimRight(o.Source, "/"), o.Version, goos, goarch, hex.EncodeToString(sum[:])),
		CreationInfo:      spdxCreationInfo{Created: created.Format(time.RFC3339), Creators: []string{"Tool: sortie tools/image"}},
	}
	add := func(id, name, version, purl string) {
		p := spdxPackage{SPDXID: id, Name: name, VersionInfo: version, DownloadLocation: "NOASSERTION",
			LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION"}
		if purl != "" {
			p.ExternalRefs = []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: purl}}
		}
		doc.Packages = append(doc.Packages, p)
	}
	doc.Packages = append(doc.Packages, spdxPackage{
		SPDXID: "SPDXRef-Binary", Name: "sortie", VersionInfo: o.Version, DownloadLocation: o.Source,
		LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
		Checksums:      []spdxChecksum{{Algorithm: "SHA256", Value: hex.EncodeToString(sum[:])}},
		PrimaryPurpose: "APPLICATION",
	})
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Binary"})
	link := func(id string) {
		doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-Binary", "CONTAINS", id})
	}
	add("SPDXRef-Module-main", info.Main.Path, o.Version, purl(info.Main.Path, o.Version)+"?vcs_revision="+o.Revision)
	link("SPDXRef-Module-main")
	for i, d := range info.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		id := fmt.Sprintf("SPDXRef-Module-%d", i+1)
		add(id, m.Path, m.Version, purl(m.Path, m.Version))
		link(id)
	}
	goVersion := strings.TrimPrefix(info.GoVersion, "go")
	add("SPDXRef-Go-stdlib", "stdlib", goVersion, "pkg:golang/stdlib@"+goVersion)
	link("SPDXRef-Go-stdlib")
	return json.MarshalIndent(doc, "", "  ")
}

// purl is a Go module's package URL (path segments lowercased, as the purl
// spec says for golang).
func purl(path, version string) string {
	u := "pkg:golang/" + strings.ToLower(path)
	if version != "" && version != "(devel)" {
		u += "@" + version
	}
	return u
}

func setting(info *debug.BuildInfo, key string) string {
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
