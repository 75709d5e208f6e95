package web

import (
	"time"

	"github.com/framehub/framehub/consumers/recorder"
)

// recordingState reads a camera's recording state from its recordings
// directory: the web daemon needs no token of the recorder's admin API for
// it. The recorder makes every fragment (1 s by default) durable, so a
// segment being written whose video ends less than 5 s ago is a recording
// in progress.
func recordingState(dir string) *RecordingState {
	if dir == "" {
		return nil
	}
	now := time.Now()
	recs, err := recorder.ListRecordings(dir, now.Add(-2*time.Minute), now.Add(time.Minute)) // reads the newest files only
	st := &RecordingState{}
	if err != nil || len(recs) == 0 {
		return st
	}
	last := recs[len(recs)-1]
	st.Last = &last.End
	st.Active = last.Open && now.Sub(last.End) < 5*time.Second
	return st
}
