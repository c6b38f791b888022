package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/client"
)

// transportFlags are the persistent flags of how the CLI reaches a server:
// the CAs it trusts and whether plaintext to another machine is allowed.
type transportFlags struct {
	CAFile   string
	Insecure bool
}

// transport holds them for the one command line being run (as globals).
var transport transportFlags

// verboseOut, with -v/--verbose, is where each HTTP exchange with the
// server is told (method, URL without query, status, duration; never a
// header or body); nil otherwise.
var verboseOut io.Writer

func bindTransportFlags(root *cobra.Command) {
	transport = transportFlags{}
	pf := root.PersistentFlags()
	pf.StringVar(&transport.CAFile, "ca-file", envOr("SORTIE_CA_FILE", ""), "PEM file of the CAs that sign the server's certificate, trusted instead of the system's (SORTIE_CA_FILE; SSL_CERT_FILE replaces the system's too)")
	pf.BoolVar(&transport.Insecure, "insecure", false, "allow an http:// server that is not on this machine: credentials and tokens then cross the network unencrypted")
}

// newClient is client.New with the transport flags: --ca-file's CAs, and
// the refusal of plaintext to another machine unless --insecure.
func newClient(o client.Options) (*client.Client, error) {
	if transport.CAFile != "" {
		pool, err := loadCAFile(transport.CAFile)
		if err != nil {
			return nil, err
		}
		o.RootCAs = pool
	}
	o.Plaintext = transport.Insecure
	o.UserAgent = "sortie-cli/" + Version
	if w := verboseOut; w != nil {
		o.Trace = func(method string, u *url.URL, status int, d time.Duration, err error) {
			if err != nil {
				fmt.Fprintf(w, "%s %s: %v (%s)\n", method, u, err, d.Round(time.Millisecond))
				return
			}
			fmt.Fprintf(w, "%s %s: %d (%s)\n", method, u, status, d.Round(time.Millisecond))
		}
	}
	c, err := client.New(o)
	if errors.Is(err, client.ErrPlaintext) {
		return nil, usageErrorf("%v, or give --insecure to send them unencrypted anyway", err)
	}
	return c, err
}

// loadCAFile reads a PEM bundle; the error names the file.
func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("--ca-file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, usageErrorf("--ca-file %s holds no PEM certificate", path)
	}
	return pool, nil
}
