package bench

import "sort"

// ParetoFront returns the records of recs (those that ran) not dominated
// in (time, error): sorted by time, each strictly more accurate than every
// faster one. Ties in time keep the more accurate record.
func ParetoFront(recs []Record) []Record {
	var ok []Record
	for _, r := range recs {
		if r.Ok() {
			ok = append(ok, r)
		}
	}
	sort.SliceStable(ok, func(i, j int) bool {
		if ok[i].Ms != ok[j].Ms {
			return ok[i].Ms < ok[j].Ms
		}
		return ok[i].Err() < ok[j].Err()
	})
	var front []Record
	for _, r := range ok {
		if len(front) == 0 || r.Err() < front[len(front)-1].Err() {
			front = append(front, r)
		}
	}
	return front
}
