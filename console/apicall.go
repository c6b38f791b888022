package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sortie-cd/sortie/api"
)

// apiError is the REST API's refusal of a call the console made for the
// user, in the API's own words.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("api: %d %s", e.Status, e.Message) }

// errNoAPI is what a write answers when the console was built without the
// API handler (Options.API, or Mount).
var errNoAPI = &apiError{Status: http.StatusNotImplemented, Message: "this console is not mounted next to the REST API, so it cannot change anything"}

// callAPI calls the REST API in process, as the session's principal with
// its own token and the browser's address: every write the console makes
// is checked, answered and audited by the API's route table, exactly as
// the same call from the CLI would be. in and out are JSON bodies (nil for
// none). A non-2xx answer returns an *apiError.
func (c *Console) callAPI(r *http.Request, s *session, method, path string, in, out any) error {
	if c.api == nil {
		return errNoAPI
	}
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("console: encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, body)
	if err != nil {
		return fmt.Errorf("console: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.RemoteAddr, req.Host = r.RemoteAddr, r.Host
	rec := serveInProcess(c.api, req)
	if rec.Code >= 300 {
		var e api.ErrorResponse
		msg := strings.TrimSpace(rec.Body.String())
		if json.Unmarshal(rec.Body.Bytes(), &e) == nil && len(e.Errors) > 0 {
			var parts []string
			for _, m := range e.Errors {
				parts = append(parts, m.Message)
			}
			msg = strings.Join(parts, "; ")
		}
		return &apiError{Status: rec.Code, Message: msg}
	}
	if out != nil && rec.Code != http.StatusNoContent {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			return fmt.Errorf("console: decode %s %s: %w", method, path, err)
		}
	}
	return nil
}
