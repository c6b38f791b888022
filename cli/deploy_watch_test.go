package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/store"
)

func TestWatchPrintsRetries(t *testing.T) {
	data, err := json.Marshal(progress.RetryEvent{Target: "prod", Step: "setWeight/0", Command: "p1/prod/setWeight/0", Attempt: 2,
		Reason: "the server is currently unable to handle the request", Message: "retrying setWeight/0: the server is currently unable to handle the request (attempt 2)"})
	if err != nil {
		t.Fatal(err)
	}
	line := eventLine(store.Event{Type: progress.EventRetry, At: time.Now(), Data: data}, nil)
	if want := "prod setWeight/0"; !strings.Contains(line, want) {
		t.Errorf("line %q does not name the target and step (%q)", line, want)
	}
	if want := "retrying setWeight/0: the server is currently unable to handle the request (attempt 2)"; !strings.HasSuffix(line, want) {
		t.Errorf("line %q does not end with the retry's message %q", line, want)
	}
}
