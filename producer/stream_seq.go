package producer

// NextSeq returns the sequence number the next Publish or PublishRef
// assigns, for a source outside this package that stamps it into the
// pixels (framehubsink's stamp option, producer/media). It is exact only
// while the caller is the stream's one publisher, between its own Acquire
// or DroppedAtSource and its next publish.
func (st *Stream) NextSeq() uint64 { return st.nextSeq() }
