// The consensus suite's allocation meter (test/consensus/alloc_meter), compiled into this
// suite too, so the CRDT decoders are held to the same "refused before allocating" checks.
#include "test/consensus/alloc_meter.cpp"  // NOLINT(bugprone-suspicious-include)
