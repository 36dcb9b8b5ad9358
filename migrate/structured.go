package migrate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// decodeStructured reads a CloudEvent in the JSON event format
// (CloudEvents 1.0, "JSON Event Format"): the required attributes, the
// optional ones this package uses, its own extensions, and the data —
// "data_base64" as bytes; "data" as the JSON value itself when the content
// type is JSON (or absent), as the string's text otherwise.
func decodeStructured(body []byte, e *Event) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return err
	}
	str := func(name string, required bool) (string, error) {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			if required {
				return "", fmt.Errorf("required attribute %q is missing", name)
			}
			return "", nil
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("attribute %q is not a string", name)
		}
		if required && s == "" {
			return "", fmt.Errorf("required attribute %q is empty", name)
		}
		return s, nil
	}
	var err error
	var sv string
	if sv, err = str("specversion", true); err != nil {
		return err
	}
	if sv != specVersion {
		return fmt.Errorf("specversion %q is not supported (want %s)", sv, specVersion)
	}
	*e = Event{}
	for _, f := range []struct {
		name     string
		dst      *string
		required bool
	}{
		{"id", &e.ID, true}, {"source", &e.Source, true}, {"type", &e.Type, true}, {"subject", &e.Subject, false},
		{"datacontenttype", &e.ContentType, false},
		{ExtRequest, &e.Req, false}, {ExtFunctionError, &e.FnErr, false}, {ExtGeneration, &e.Gen, false}, {ExtSignature, &e.Sig, false},
	} {
		if *f.dst, err = str(f.name, f.required); err != nil {
			return err
		}
	}
	t, err := str("time", false)
	if err != nil {
		return err
	}
	if t != "" {
		if e.Time, err = time.Parse(time.RFC3339Nano, t); err != nil {
			return fmt.Errorf("time %q is not an RFC 3339 timestamp", t)
		}
	}
	data, hasData := raw["data"]
	b64, hasB64 := raw["data_base64"]
	switch {
	case hasData && hasB64:
		return errors.New(`both "data" and "data_base64" are set`)
	case hasB64:
		var s string
		if err := json.Unmarshal(b64, &s); err != nil {
			return errors.New(`"data_base64" is not a string`)
		}
		if e.Data, err = base64.StdEncoding.DecodeString(s); err != nil {
			return fmt.Errorf(`"data_base64": %w`, err)
		}
	case hasData && string(data) != "null":
		if isJSON(e.ContentType) {
			e.Data = bytes.Clone(data)
			break
		}
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf(`"data" of content type %q must be a JSON string`, e.ContentType)
		}
		e.Data = []byte(s)
	}
	return nil
}

// isJSON reports whether a data content type is JSON (absent counts as
// JSON in the JSON event format).
func isJSON(contentType string) bool {
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	return ct == "" || ct == "application/json" || ct == "text/json" || strings.HasSuffix(ct, "+json")
}
