package kubetest

import (
	"fmt"
	"strconv"
	"strings"
)

// SampleApp is the tests' sample application as YAML: a Deployment name
// of replicas pods labelled app: name, each running one container "web" of
// image (which may hold the deployment file's templating, such as
// "web:{{context.version}}").
func SampleApp(name string, replicas int, image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: %[1]s}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      containers:
        - name: web
          image: %[3]s
`, name, replicas, strconv.Quote(image))
}

// SampleService is the Service name selecting the pods of the sample
// application app (app: app) on port 80, as YAML.
func SampleService(name, app string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
spec:
  selector: {app: %s}
  ports: [{port: 80}]
`, name, app)
}

// Inline joins YAML documents (each may start with its "---") and indents them as the text of a
// deployment file's `  - inline: |` entry under manifests.
func Inline(docs ...string) string {
	var b strings.Builder
	for _, d := range docs {
		d = strings.TrimPrefix(strings.TrimLeft(d, "\n"), "---\n")
		if strings.TrimSpace(d) == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("      ---\n")
		}
		for line := range strings.Lines(d) {
			if strings.TrimSpace(line) == "" {
				b.WriteString("\n")
				continue
			}
			b.WriteString("      " + strings.TrimSuffix(line, "\n") + "\n")
		}
	}
	return b.String()
}
