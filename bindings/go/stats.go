package pmap

/*
#include "shims.h"
*/
import "C"

import "time"

// Stats are a pool's counters. Submitted, Succeeded, Failed, Cancelled, Workers, Elapsed
// and Busy come from the library (pmap_stats_get), read together; InFlight counts items
// submitted and not yet taken by Next. After the pool has released its C resources
// (ErrDone, or Done closed), Stats returns the counters as last read before the release.
type Stats struct {
	Submitted uint64        // items accepted
	Succeeded uint64        // items whose function succeeded
	Failed    uint64        // items whose function failed (error, panic, non-zero code)
	Cancelled uint64        // items that never ran because the pool was cancelled
	InFlight  uint64        // submitted and not yet taken by Next
	Workers   int           // worker threads
	Elapsed   time.Duration // since the pool was created
	Busy      time.Duration // inside the work function, summed over workers
}

func statsFromC(s *C.pmap_stats) Stats {
	return Stats{
		Submitted: uint64(s.submitted),
		Succeeded: uint64(s.succeeded),
		Failed:    uint64(s.failed),
		Cancelled: uint64(s.cancelled),
		InFlight:  uint64(s.in_flight),
		Workers:   int(s.workers),
		Elapsed:   time.Duration(s.elapsed_ns),
		Busy:      time.Duration(s.busy_ns),
	}
}
