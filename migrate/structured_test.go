package migrate

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// TestDecodeStructuredAgreesWithTheSDK: events the cloudevents SDK writes
// in the JSON event format decode to the same attributes and data here.
func TestDecodeStructuredAgreesWithTheSDK(t *testing.T) {
	at := time.Date(2026, 12, 3, 6, 0, 0, 123456789, time.UTC)
	for name, build := range map[string]func(e *event.Event){
		"json data":   func(e *event.Event) { require.NoError(t, e.SetData("application/json", map[string]int{"n": 1})) },
		"text data":   func(e *event.Event) { require.NoError(t, e.SetData("text/plain", "hello \"world\"")) },
		"binary data": func(e *event.Event) { require.NoError(t, e.SetData("application/octet-stream", []byte{0, 1, 2, 255})) },
		"no data":     func(e *event.Event) {},
		"extensions": func(e *event.Event) {
			e.SetExtension(ExtRequest, "req-1")
			e.SetExtension(ExtFunctionError, "true")
			e.SetExtension(ExtGeneration, "g7")
			e.SetExtension(ExtSignature, "v1=abc")
			require.NoError(t, e.SetData("text/plain", "boom"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			ev := event.New()
			ev.SetID("id-1")
			ev.SetSource("test/source")
			ev.SetType(EventResult)
			ev.SetSubject("fn")
			ev.SetTime(at)
			build(&ev)
			body, err := ev.MarshalJSON()
			require.NoError(t, err)
			var got Event
			require.NoError(t, decodeStructured(body, &got), "%s", body)
			ext := ev.Extensions()
			str := func(k string) string { v, _ := ext[k].(string); return v }
			want := Event{ID: ev.ID(), Source: ev.Source(), Type: ev.Type(), Subject: ev.Subject(), Time: ev.Time(),
				Req: str(ExtRequest), FnErr: str(ExtFunctionError), Gen: str(ExtGeneration), Sig: str(ExtSignature),
				ContentType: ev.DataContentType(), Data: ev.Data()}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("decoded %s (-sdk +here):\n%s", body, diff)
			}
		})
	}
}

func TestDecodeStructuredRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"not json":      `{`,
		"no id":         `{"specversion":"1.0","source":"s","type":"t"}`,
		"old version":   `{"specversion":"0.3","id":"i","source":"s","type":"t"}`,
		"id not string": `{"specversion":"1.0","id":1,"source":"s","type":"t"}`,
		"bad time":      `{"specversion":"1.0","id":"i","source":"s","type":"t","time":"noon"}`,
		"both datas":    `{"specversion":"1.0","id":"i","source":"s","type":"t","data":1,"data_base64":"AA=="}`,
		"bad base64":    `{"specversion":"1.0","id":"i","source":"s","type":"t","data_base64":"!!"}`,
		"text not str":  `{"specversion":"1.0","id":"i","source":"s","type":"t","datacontenttype":"text/plain","data":1}`,
	} {
		var e Event
		require.Error(t, decodeStructured([]byte(body), &e), name)
	}
}
