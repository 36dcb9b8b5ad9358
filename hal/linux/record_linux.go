package linux

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// recordVersion is the version of the undo records ApplyJournaled writes.
const recordVersion = 1

// undoRecord is the serialised journal of one ApplyJournaled: its steps in
// the order they were made.
type undoRecord struct {
	Version int          `json:"v"`
	Driver  string       `json:"driver"`
	Steps   []recordStep `json:"steps"`
}

// recordStep is one step; Kind says which fields it uses.
type recordStep struct {
	Kind    string   `json:"k"` // file, dir, task, drain, controllers, lines
	Dir     string   `json:"dir,omitempty"`
	File    string   `json:"file,omitempty"`
	Content string   `json:"content,omitempty"`
	Path    string   `json:"path,omitempty"`
	Shared  bool     `json:"shared,omitempty"`
	PID     int      `json:"pid,omitempty"`
	TGID    int      `json:"tgid,omitempty"`
	Home    string   `json:"home,omitempty"`
	Names   []string `json:"names,omitempty"`
	Lines   []string `json:"lines,omitempty"`
}

func encodeSteps(steps []step) ([]byte, error) {
	rec := undoRecord{Version: recordVersion, Driver: "linux", Steps: make([]recordStep, 0, len(steps))}
	for _, s := range steps {
		var r recordStep
		switch s := s.(type) {
		case *savedFile:
			r = recordStep{Kind: "file", Dir: s.dir, File: s.file, Content: s.content}
		case *createdDir:
			r = recordStep{Kind: "dir", Path: s.path, Shared: s.shared}
		case *movedTask:
			r = recordStep{Kind: "task", PID: s.t.pid, TGID: s.t.tgid, Home: s.home}
		case *drain:
			r = recordStep{Kind: "drain", Dir: s.dir, Home: s.home}
		case *enabledControllers:
			r = recordStep{Kind: "controllers", Dir: s.dir, Names: s.names}
		case *savedLines:
			r = recordStep{Kind: "lines", Dir: s.dir, File: s.file, Lines: s.lines}
		default:
			return nil, fmt.Errorf("step %T cannot be recorded", s)
		}
		rec.Steps = append(rec.Steps, r)
	}
	return json.Marshal(rec)
}

// decodeSteps reads a record ApplyJournaled wrote, refusing one it cannot
// trust with an error saying why: among others, one naming a path outside
// the cgroup mount point root.
func decodeSteps(b []byte, root string) ([]step, error) {
	var rec undoRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("linux: undo record: %w", err)
	}
	if dec.More() {
		return nil, errors.New("linux: undo record: data after the record")
	}
	if rec.Driver != "linux" {
		return nil, fmt.Errorf("linux: undo record: written by driver %q, not linux", rec.Driver)
	}
	if rec.Version != recordVersion {
		return nil, fmt.Errorf("linux: undo record: version %d, this driver reads %d", rec.Version, recordVersion)
	}
	steps := make([]step, 0, len(rec.Steps))
	root = filepath.Clean(root) + string(filepath.Separator)
	for i, r := range rec.Steps {
		bad := func(what string) error { return fmt.Errorf("linux: undo record: step %d (%s): %s", i, r.Kind, what) }
		for _, p := range []string{r.Dir, r.Path, r.Home} {
			if p != "" && (!strings.HasPrefix(filepath.Clean(p)+string(filepath.Separator), root) || filepath.Clean(p) != p) {
				return nil, bad(fmt.Sprintf("path %q is not under the cgroup root %s", p, root))
			}
		}
		if strings.ContainsAny(r.File, "/\x00") || r.File == ".." {
			return nil, bad(fmt.Sprintf("file name %q", r.File))
		}
		switch r.Kind {
		case "file":
			if r.Dir == "" || r.File == "" {
				return nil, bad("no dir or file")
			}
			steps = append(steps, &savedFile{dir: r.Dir, file: r.File, content: r.Content})
		case "dir":
			if r.Path == "" {
				return nil, bad("no path")
			}
			steps = append(steps, &createdDir{path: r.Path, shared: r.Shared})
		case "task":
			if r.PID <= 0 || r.TGID <= 0 || r.Home == "" {
				return nil, bad("no pid, tgid or home")
			}
			steps = append(steps, &movedTask{t: task{pid: r.PID, tgid: r.TGID}, home: r.Home})
		case "drain":
			if r.Dir == "" || r.Home == "" {
				return nil, bad("no dir or home")
			}
			steps = append(steps, &drain{dir: r.Dir, home: r.Home})
		case "controllers":
			if r.Dir == "" || len(r.Names) == 0 {
				return nil, bad("no dir or controllers")
			}
			steps = append(steps, &enabledControllers{dir: r.Dir, names: r.Names})
		case "lines":
			if r.Dir == "" || r.File == "" {
				return nil, bad("no dir or file")
			}
			steps = append(steps, &savedLines{dir: r.Dir, file: r.File, lines: r.Lines})
		default:
			return nil, bad("unknown kind")
		}
	}
	return steps, nil
}
