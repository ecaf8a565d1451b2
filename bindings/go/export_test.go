package pmap

// LiveHandles returns the number of cgo.Handles the package holds.
func LiveHandles() int64 { return liveHandles.Load() }

// LiveChunks returns the number of C chunk buffers of the C-function path not yet freed.
func LiveChunks() int64 { return liveChunks.Load() }

// Dropped returns how many items pmap_free handed to on_drop so far.
func Dropped() int64 { return droppedItems.Load() }
