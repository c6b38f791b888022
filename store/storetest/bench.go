package storetest

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sortie-cd/sortie/store"
)

// BenchmarkSave measures SavePipeline on s, a store on an empty database:
// one pipeline of CanaryPipeline (three canary targets part-way through),
// saved over and over with one event, as the engine does after each
// transition. It reports saves per second and the size of the state.
func BenchmarkSave(b *testing.B, s store.Store) {
	p := CanaryPipeline(store.DefaultTenant, "bench", "web", t0)
	if err := s.CreatePipeline(b.Context(), p, nil, nil); err != nil {
		b.Fatal(err)
	}
	state, err := json.Marshal(p.State)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.State.Message = fmt.Sprint("save ", i)
		if err := s.SavePipeline(b.Context(), p, []store.Event{{At: t0, Type: "status", Data: json.RawMessage(`{"target":"staging","status":"RUNNING"}`)}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
	b.ReportMetric(float64(len(state)), "state-bytes")
}

// BenchmarkSaveParallel is BenchmarkSave from many goroutines at once, each
// on its own pipeline, as a server driving many pipelines does.
func BenchmarkSaveParallel(b *testing.B, s store.Store) {
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprint("bench-", next.Add(1))
		p := CanaryPipeline(store.DefaultTenant, id, id, t0)
		if err := s.CreatePipeline(b.Context(), p, nil, nil); err != nil {
			b.Error(err)
			return
		}
		for i := 0; pb.Next(); i++ {
			p.State.Message = fmt.Sprint("save ", i)
			if err := s.SavePipeline(b.Context(), p, []store.Event{{At: t0, Type: "status"}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
}

// BenchmarkCreate measures CreatePipeline with admission, each pipeline of a
// new application, with its source and two events.
func BenchmarkCreate(b *testing.B, s store.Store) {
	base := CanaryPipeline(store.DefaultTenant, "bench", "web", t0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p := *base
		p.ID = fmt.Sprint("bench-", i)
		p.Application = p.ID
		if err := s.CreatePipeline(b.Context(), &p, oneInFlight, events("created", "started")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}
