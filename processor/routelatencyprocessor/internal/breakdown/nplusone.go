package breakdown

// NPlusOne returns the statement a request ran most often and how often; flagged when that is at least threshold
// (an N+1 loop: one query per item of a list). Ties go to the lexically first statement, so that the answer is
// the same whatever the order of the spans.
func NPlusOne(split Split, threshold int) (statement string, repeats int, flagged bool) {
	for _, st := range split.Statements {
		if st.Calls > repeats || st.Calls == repeats && st.Statement < statement {
			statement, repeats = st.Statement, st.Calls
		}
	}
	return statement, repeats, threshold > 0 && repeats >= threshold
}
