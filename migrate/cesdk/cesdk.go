// Package cesdk signs and verifies events of the cloudevents SDK
// (github.com/cloudevents/sdk-go/v2) for updraft's CloudEvents wire, so
// that a client or receiver built with the SDK can call a migrate.Handler
// or answer a migrate.CloudEventsTarget. It lives apart from package
// migrate so that a host of updraft, which links migrate's core, links
// neither the SDK nor its dependencies (zap, json-iterator) unless it
// imports this package.
package cesdk

import (
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/updraft-dev/updraft/migrate"
)

// FromSDK returns the attributes, extensions and data of ev that
// updraft's signature covers.
func FromSDK(ev *event.Event) *migrate.Event {
	ext := ev.Extensions()
	str := func(k string) string {
		v, _ := ext[k].(string)
		return v
	}
	return &migrate.Event{
		ID: ev.ID(), Source: ev.Source(), Type: ev.Type(), Subject: ev.Subject(), Time: ev.Time(),
		Req: str(migrate.ExtRequest), FnErr: str(migrate.ExtFunctionError), Gen: str(migrate.ExtGeneration), Sig: str(migrate.ExtSignature), ReplyTo: str(migrate.ExtReplyTo),
		ContentType: ev.DataContentType(), Data: ev.Data(),
	}
}

// Sign sets ev's signature extension (see migrate.SignEvent). ev must have
// its time set.
func Sign(key []byte, ev *event.Event) error {
	w := FromSDK(ev)
	if err := migrate.SignEvent(key, w); err != nil {
		return err
	}
	ev.SetExtension(migrate.ExtSignature, w.Sig)
	return nil
}

// Verify checks ev's signature with key and that its time is within
// window of now (see migrate.VerifyEvent).
func Verify(key []byte, ev *event.Event, now time.Time, window time.Duration) error {
	return migrate.VerifyEvent(key, FromSDK(ev), now, window)
}
