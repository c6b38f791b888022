package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// The waits read the state once, then watch from the resourceVersion of
// that read. They do not start with an informer's list: a list that must
// be consistent (what the reflector asks for by default) waits for the API
// server's watch cache to prove itself fresh, about 100 ms on a quiet
// cluster, on every wait of every step.

// watchFrom follows changes from resourceVersion rv (of a read or a write),
// calling change for each until it reports done. A watch the server closes
// is opened again from the last change seen.
func watchFrom(ctx context.Context, rv string, open func(context.Context, metav1.ListOptions) (watch.Interface, error), change func(watch.Event) (bool, error)) error {
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, rv, &cache.ListWatch{WatchFuncWithContext: open})
	if err != nil {
		return err
	}
	defer rw.Stop()
	for {
		select {
		case ev, ok := <-rw.ResultChan():
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return watchtools.ErrWatchClosed
			}
			switch ev.Type {
			case watch.Bookmark:
				continue
			case watch.Error:
				return fmt.Errorf("watch: %w", apierrors.FromObject(ev.Object))
			}
			if done, err := change(ev); err != nil || done {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
