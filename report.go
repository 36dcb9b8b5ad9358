package updraft

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/updraft-dev/updraft/degrade"
	"github.com/updraft-dev/updraft/hal"
	"github.com/updraft-dev/updraft/migrate"
	"github.com/updraft-dev/updraft/partition"
	"github.com/updraft-dev/updraft/validate"
)

// Phase names one step of an update. The names are stable: they appear in
// reports, events and logs.
type Phase string

// The phases, in the order they run. The last group are compensations and
// roll-back steps.
const (
	PhaseProfile   Phase = "profile"
	PhasePlan      Phase = "plan"
	PhaseBaseline  Phase = "baseline"
	PhaseMigrate   Phase = "migrate"
	PhaseSnapshot  Phase = "snapshot"
	PhasePartition Phase = "partition"
	PhaseDegrade   Phase = "degrade"
	PhaseUpdate    Phase = "update"
	PhaseValidate  Phase = "validate"

	PhaseRollback       Phase = "rollback"        // the host's Update.Rollback
	PhaseRestore        Phase = "restore-state"   // state restored from the snapshot
	PhaseRestoreService Phase = "restore-service" // degraded functions back to normal
	PhaseUnpartition    Phase = "undo-partition"  // the device's Undo
	PhaseReturn         Phase = "return-migrated" // migrated functions brought back
	PhaseCleanup        Phase = "cleanup"         // alerts about the compensations as a whole
	PhaseOutcome        Phase = "outcome"         // the event that tells how an update ended
)

// compensates reports whether p undoes a step (or rolls the update back):
// the phases that Resume owes when they failed or never ran.
func (p Phase) compensates() bool {
	switch p {
	case PhaseRollback, PhaseRestore, PhaseRestoreService, PhaseUnpartition, PhaseReturn:
		return true
	}
	return false
}

// Outcome is how a phase, or a whole update, ended.
type Outcome string

// Phase outcomes.
const (
	OK     Outcome = "ok"
	Failed Outcome = "failed"
)

// Update outcomes.
const (
	// Committed: the update is in place and validated; full service is back.
	Committed Outcome = "committed"
	// Aborted: a phase before the update failed; the update never ran and
	// everything that had changed was undone.
	Aborted Outcome = "aborted"
	// RolledBack: the update or its validation failed; the host rolled back
	// and the snapshot was restored.
	RolledBack Outcome = "rolled back"
	// RollbackFailed: the rollback or the restore failed too; critical
	// functions serve on what could be restored and an alert was emitted.
	RollbackFailed Outcome = "rollback failed"
	// NothingToResume: Resume found no unfinished update and changed nothing.
	NothingToResume Outcome = "nothing to resume"
	// HandedOver: this process handed the data plane and the unfinished
	// update to another process (a self-update rolling back to the
	// previous executable), which finishes it.
	HandedOver Outcome = "handed over"
)

// PhaseRecord is one line of the report's timeline.
type PhaseRecord struct {
	Phase    Phase
	Start    time.Time
	Duration time.Duration
	Outcome  Outcome
	Detail   string // what the phase did, in words
	Err      error
}

// FunctionDecision is the criticality verdict on one function.
type FunctionDecision struct {
	Function   string
	Critical   bool
	Reasons    []string
	Forecast   hal.Vector // the p99 demand planned for
	Confidence float64
}

// DegradeDecision is one function reduced for the window.
type DegradeDecision struct {
	Function string
	Mode     degrade.Mode
	Reason   string
	Until    time.Time
}

// Report is what one update did: the timeline and every decision, with its
// reasons. String prints it as tables for a terminal or a ticket.
type Report struct {
	// Update is the update's id, as in the journal.
	Update            string
	Started, Finished time.Time
	Outcome           Outcome
	Err               error
	Phases            []PhaseRecord
	// Resumed is set on the report of [Orchestrator.Resume]: the phases are
	// the compensations it ran for an update a crashed process left.
	Resumed bool

	Functions     []FunctionDecision // in declaration order
	Capacity      hal.Vector
	Plan          *partition.Plan
	Placements    []migrate.Placement
	SnapshotID    string
	SnapshotPause time.Duration
	Degraded      []DegradeDecision
	Validation    *validate.Report
	Flags         []string // things the host should look at although the update committed
}

// Ran reports whether phase p ran, and with which outcome.
func (r *Report) Ran(p Phase) (Outcome, bool) {
	for _, rec := range r.Phases {
		if rec.Phase == p {
			return rec.Outcome, true
		}
	}
	return "", false
}

// PhaseNames returns the phases in the order they ran.
func (r *Report) PhaseNames() []Phase {
	out := make([]Phase, len(r.Phases))
	for i, rec := range r.Phases {
		out[i] = rec.Phase
	}
	return out
}

// String renders the report as readable tables.
func (r *Report) String() string {
	var b strings.Builder
	verb := "update"
	if r.Resumed {
		verb = "resumed update"
	}
	fmt.Fprintf(&b, "%s %s %s in %v\n", verb, r.Update, r.Outcome, r.Finished.Sub(r.Started).Round(time.Microsecond))
	if r.Err != nil {
		fmt.Fprintf(&b, "error: %s\n", oneLine(r.Err.Error()))
	}
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nPHASE\tOUTCOME\tDURATION\tDETAIL")
	for _, p := range r.Phases {
		detail := p.Detail
		if p.Err != nil {
			detail = oneLine(p.Err.Error())
		}
		fmt.Fprintf(w, "%s\t%s\t%v\t%s\n", p.Phase, p.Outcome, p.Duration.Round(time.Microsecond), detail)
	}
	if len(r.Functions) > 0 {
		fmt.Fprintln(w, "\nFUNCTION\tCRITICAL\tALLOCATION\tWHY")
		for _, f := range r.Functions {
			fmt.Fprintf(w, "%s\t%v\t%s\t%s\n", f.Function, f.Critical, r.placeOf(f.Function), strings.Join(f.Reasons, "; "))
		}
	}
	w.Flush()
	if r.Plan != nil && !r.Plan.Reserve.IsZero() {
		fmt.Fprintf(&b, "\nreserve kept for bursts: %v\n", r.Plan.Reserve)
	}
	if r.SnapshotID != "" {
		fmt.Fprintf(&b, "snapshot: %s (pause %v)\n", r.SnapshotID, r.SnapshotPause)
	}
	for _, d := range r.Degraded {
		fmt.Fprintf(&b, "degraded: %s %s until %s — %s\n", d.Function, d.Mode, d.Until.Format(time.RFC3339), d.Reason)
	}
	if r.Validation != nil {
		fmt.Fprintf(&b, "validation: %s (score %.2f)\n", r.Validation.Verdict, r.Validation.Score)
		for _, res := range r.Validation.Results {
			line := fmt.Sprintf("  %s: %s", res.Check, res.Verdict)
			if len(res.Evidence) > 0 {
				line += " — " + strings.Join(res.Evidence, "; ")
			}
			if res.Err != nil {
				line += " — " + oneLine(res.Err.Error())
			}
			b.WriteString(line + "\n")
		}
	}
	for _, f := range r.Flags {
		fmt.Fprintf(&b, "flag: %s\n", f)
	}
	return b.String()
}

// placeOf says where function ran during the window.
func (r *Report) placeOf(function string) string {
	for _, p := range r.Placements {
		if p.Function == function {
			return fmt.Sprintf("moved to %s (%s)", p.Target, p.Region)
		}
	}
	for _, d := range r.Degraded {
		if d.Function == function {
			return d.Mode.String()
		}
	}
	if r.Plan != nil {
		for _, a := range r.Plan.Allocations {
			if a.Function == function {
				return a.Guarantee.String()
			}
		}
	}
	return "-"
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
