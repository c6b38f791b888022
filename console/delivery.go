package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/api"
)

// deliveryData is the DORA page: the API's figures for the chosen period.
type deliveryData struct {
	Page
	Report      api.DoraReport
	Application string
	Days        string
	From, To    string // the custom period's dates, 2006-01-02
	DaysChoices []string
	// Query is the API query the figures came from, for the JSON link.
	Query string
	Error string
}

// deliveryPage shows the four DORA measures per application and target of
// the tenant, over the last days or a custom period (From and To dates, To
// included), as GET /api/v1/dora computes them.
func (c *Console) deliveryPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := deliveryData{
		Page:        c.page(r, s, "Delivery"),
		Application: strings.TrimSpace(q.Get("application")),
		Days:        strings.TrimSpace(q.Get("days")),
		From:        strings.TrimSpace(q.Get("from")),
		To:          strings.TrimSpace(q.Get("to")),
		DaysChoices: []string{"1", "7", "30", "90", "365"},
	}
	aq := url.Values{}
	if d.Application != "" {
		aq.Set("application", d.Application)
	}
	switch {
	case d.From != "" || d.To != "":
		from, err := time.Parse(time.DateOnly, d.From)
		to, err2 := time.Parse(time.DateOnly, d.To)
		if err != nil || err2 != nil {
			d.Error = "Give the period's first and last days as dates (YYYY-MM-DD), or choose a number of days."
			c.render(w, r, http.StatusBadRequest, "delivery", d)
			return
		}
		aq.Set("since", from.Format(time.RFC3339))
		aq.Set("until", to.AddDate(0, 0, 1).Format(time.RFC3339)) // the last day included
		d.Days = ""
	case d.Days != "":
		aq.Set("days", d.Days)
	default:
		d.Days = "30"
		aq.Set("days", d.Days)
	}
	d.Query = aq.Encode()
	if err := c.callAPI(r, s, http.MethodGet, api.Prefix+"/dora?"+d.Query, nil, &d.Report); err != nil {
		if msg := userMessage(err); msg != "" {
			d.Error = msg
			c.render(w, r, http.StatusBadRequest, "delivery", d)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "delivery", d)
}

// seconds is a duration in seconds as people read it: 45s, 12m, 3.5h, 2.1d.
func seconds(v float64) string {
	switch {
	case v == 0:
		return "–"
	case v < 60:
		return fmt.Sprintf("%.0fs", v)
	case v < 3600:
		return fmt.Sprintf("%.0fm", v/60)
	case v < 48*3600:
		return fmt.Sprintf("%.1fh", v/3600)
	}
	return fmt.Sprintf("%.1fd", v/86400)
}
