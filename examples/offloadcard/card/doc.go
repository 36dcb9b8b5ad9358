// Package card is a custom updraft HAL driver written the way a user
// would write one: a simulated offload card (a SmartNIC) whose resources
// are hardware queues ([Queue], "nic.queue") and flow-table entries
// ([Flow], "nic.flow").
//
// Importing the package registers the driver as "offloadcard":
//
//	import _ "github.com/updraft-dev/updraft/examples/offloadcard/card"
//
//	dev, err := hal.Open("offloadcard", `{"queues": 16, "flows": 4096}`)
//
// Both resources come in whole units, and the card says so through
// [hal.Units] ([Card.Units]); a planner that does not read it is given
// partition.Options{Granularity: card.Granularity()}. Apply refuses a
// fraction with an error matching hal.ErrNotInUnits. A function's Guarantee
// of [Queue] is the number of queues it owns outright; its Guarantee of
// [Flow] is the number of flow entries reserved for it, and its Limit of
// [Flow] the most it may hold, the entries beyond its reservation coming
// from the shared rest of the table. Apply is all or nothing, and the
// returned Undo puts back exactly the queue table and flow quotas that
// were there before.
//
// The card is [hal.Journaled]: ApplyJournaled journals the owner of each
// queue it reassigns and each named function's flow quota before changing
// them, and UndoRecord puts them back. With [Config.State] the card's
// configuration lives in a file, as a real card's outlives the process
// that configured it, so a new process opening the card on the same file
// can undo from the record.
//
// The card is a [hal.Meter] too: Usage reports the queues a function owns
// and the flow entries its traffic installed. [Card.InstallFlows] stands
// in for that traffic in tests and examples, and is refused with
// [ErrOverLimit] or [ErrTableFull] the way the hardware would refuse it.
package card
