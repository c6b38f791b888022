//go:build tools

// Package helm pins the helm command the chart tests run (helm lint, helm
// template, helm install against the local cluster). It is a separate
// module so that the product's go.mod does not carry Helm's dependencies;
// localkube.EnsureHelm builds it into ~/.cache/sortie/tools/.
package helm

import _ "helm.sh/helm/v3/cmd/helm"
