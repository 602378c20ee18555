"""Shows that checker.check can fail: fabricated histories with a lost,
changed, duplicated, truncated, phantom ... record must be reported, and a
clean one must pass. Runs with pytest or plainly:
    python3 tests/cluster/test_checker.py
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checker import add_client_failures, check  # noqa: E402


def clean_history():
    """Two partitions, five records each, all acknowledged and all consumed;
    one unacknowledged value that made it into the log (p1@4)."""
    final = {0: [(o, f"r-0-{o}") for o in range(5)], 1: [(o, f"r-1-{o}") for o in range(5)]}
    acked = [(p, o, v) for p, recs in final.items() for o, v in recs if (p, o) != (1, 4)]
    maybe = {"r-1-4", "r-9-9"}  # r-9-9: sent, never acknowledged, not in the log
    consumed = [(p, o, v) for p, recs in final.items() for o, v in recs]
    hw = {0: 5, 1: 5}
    return acked, maybe, consumed, final, hw


def run(acked, maybe, consumed, final, hw, **kw):
    return check(acked, maybe, consumed, final, hw, **kw)


def kinds(summary):
    return set(summary["violation_kinds"])


def test_clean_history_passes():
    s = run(*clean_history())
    assert s["ok"], s
    assert s["acked"] == 9 and s["maybe"] == 2 and s["maybe_in_log"] == 1, s
    assert s["final"] == {"0": 5, "1": 5} and s["violation_count"] == 0, s


def test_empty_history_passes():
    s = run([], set(), [], {0: [], 1: []}, {0: 0, 1: 0})
    assert s["ok"], s


def test_lost_acknowledged_record():
    acked, maybe, consumed, final, hw = clean_history()
    # The tail of p0 was truncated after r-0-4 was acknowledged (and the HW fell).
    final[0] = final[0][:4]
    hw[0] = 4
    consumed = [c for c in consumed if c[:2] != (0, 4)]
    s = run(acked, maybe, consumed, final, hw)
    assert not s["ok"] and kinds(s) == {"lost", "hw below acks"}, s
    assert any("r-0-4" in v for v in s["violations"]), s


def test_acknowledged_offset_overwritten():
    acked, maybe, consumed, final, hw = clean_history()
    # A new leader wrote another value at an acknowledged offset (and the old one moved on).
    final[0][3] = (3, "r-9-9")
    final[0][4] = (4, "r-0-3")
    consumed = [c for c in consumed if c[0] != 0]
    s = run(acked, maybe, consumed, final, hw)
    assert kinds(s) == {"changed"}, s
    assert s["violation_kinds"]["changed"] == 2, s


def test_duplicate_of_acknowledged_value():
    acked, maybe, consumed, final, hw = clean_history()
    final[1].append((5, "r-0-2"))  # a retry written twice
    hw[1] = 6
    s = run(acked, maybe, consumed, final, hw)
    assert kinds(s) == {"duplicate"}, s


def test_duplicate_of_unacknowledged_value():
    acked, maybe, consumed, final, hw = clean_history()
    final[0].append((5, "r-1-4"))  # the unacknowledged r-1-4 written twice
    hw[0] = 6
    s = run(acked, maybe, consumed, final, hw)
    assert kinds(s) == {"duplicate (unacknowledged value)"}, s


def test_gap_in_offsets():
    acked, maybe, consumed, final, hw = clean_history()
    del final[1][2]  # offset 2 missing, HW still 5
    acked = [a for a in acked if a[:2] != (1, 2)]
    consumed = [c for c in consumed if c[:2] != (1, 2)]
    s = run(acked, maybe, consumed, final, hw)
    assert kinds(s) == {"gap"}, s


def test_unread_tail_below_hw():
    acked, maybe, consumed, final, hw = clean_history()
    hw[0] = 7  # the HW says 7 but offsets 5 and 6 could not be read
    s = run(acked, maybe, consumed, final, hw)
    assert kinds(s) == {"gap"}, s


def test_log_starts_late():
    acked, maybe, consumed, final, hw = clean_history()
    final[0] = final[0][2:]
    acked = [a for a in acked if not (a[0] == 0 and a[1] < 2)]
    consumed = [c for c in consumed if not (c[0] == 0 and c[1] < 2)]
    s = run(acked, maybe, consumed, final, hw)
    assert kinds(s) == {"log starts late"}, s


def test_repeated_offset():
    acked, maybe, consumed, final, hw = clean_history()
    final[0].insert(3, (2, "r-9-9"))  # two records read at offset 2
    s = run(acked, maybe, consumed, final, hw)
    assert "repeated offset" in kinds(s), s


def test_consumer_saw_truncated_record():
    acked, maybe, consumed, final, hw = clean_history()
    # The consumer was served an unacknowledged record above the HW that a new leader then dropped.
    consumed.append((1, 5, "r-9-9"))
    s = run(acked, maybe, consumed, final, hw)
    assert kinds(s) == {"truncated read"}, s


def test_consumer_saw_other_value_at_offset():
    acked, maybe, consumed, final, hw = clean_history()
    final[1][4] = (4, "r-9-9")  # unacknowledged p1@4 replaced by another unacknowledged value
    s = run(acked, maybe, consumed, final, hw)  # the consumer had seen r-1-4 at p1@4
    assert kinds(s) == {"truncated read"}, s


def test_consumer_served_two_values_for_one_offset():
    acked, maybe, consumed, final, hw = clean_history()
    consumed.append((0, 1, "r-9-9"))
    s = run(acked, maybe, consumed, final, hw)
    assert "truncated read" in kinds(s), s


def test_consumer_redelivery_is_fine():
    acked, maybe, consumed, final, hw = clean_history()
    consumed += consumed[:3]  # the same records served again after a reconnect
    s = run(acked, maybe, consumed, final, hw)
    assert s["ok"], s


def test_phantom_value():
    acked, maybe, consumed, final, hw = clean_history()
    final[1].append((5, "garbage"))
    hw[1] = 6
    s = run(acked, maybe, consumed, final, hw)
    assert kinds(s) == {"phantom"}, s


def test_double_acknowledgement():
    acked, maybe, consumed, final, hw = clean_history()
    acked.append((0, 1, "r-9-9"))  # two producers told offset p0@1 is theirs
    s = run(acked, maybe, consumed, final, hw)
    assert "double ack" in kinds(s), s
    acked, maybe, consumed, final, hw = clean_history()
    acked.append((1, 0, "r-0-0"))  # one value acknowledged at two offsets
    s = run(acked, maybe, consumed, final, hw)
    assert "double ack" in kinds(s), s


def test_above_hw():
    acked, maybe, consumed, final, hw = clean_history()
    hw[0] = 4  # a record at offset 4 was returned although the HW is 4
    s = run(acked, maybe, consumed, final, hw)
    assert "above hw" in kinds(s) and "hw below acks" in kinds(s), s


def test_fatal_producer_error_fails_the_run():
    s = add_client_failures(run(*clean_history()), ["producer 0: out of order sequence number"], [])
    assert not s["ok"] and kinds(s) == {"producer fatal error"}, s
    s = add_client_failures(run(*clean_history()), [], ["consumer died: boom"])
    assert not s["ok"] and kinds(s) == {"client died"}, s
    s = add_client_failures(run(*clean_history()), [], [], ["producer 1: r-1-9 at p1: OUT_OF_ORDER_SEQUENCE_NUMBER"] * 3)
    assert not s["ok"] and kinds(s) == {"producer sequence error"} and s["violation_count"] == 1, s
    assert add_client_failures(run(*clean_history()), [], [])["ok"]


def test_acknowledged_without_offset():
    acked, maybe, consumed, final, hw = clean_history()
    # r-0-3 acknowledged as a duplicate of a batch already written: no offset reported.
    acked = [(p, None if (p, o) == (0, 3) else o, v) for p, o, v in acked] + [(1, -1, "r-1-4")]
    s = run(acked, maybe, consumed, final, hw)
    assert s["ok"] and s["acked"] == 10 and s["acked_without_offset"] == 2, s
    final[0] = [r for r in final[0] if r[1] != "r-0-3"] + [(3, "r-9-9")]  # ... but it is not in the log
    consumed = [c for c in consumed if c[:2] != (0, 3)]
    s = run(acked, maybe, consumed, final, hw)
    assert kinds(s) == {"lost"}, s
    final[0] = final[0][:-1] + [(3, "r-1-4")]  # written twice, once in p1 and once in p0
    s = run(acked, maybe, consumed, final, hw)
    assert kinds(s) >= {"lost", "duplicate"}, s


def test_violation_list_is_bounded():
    acked = [(0, o, f"v{o}") for o in range(1000)]
    s = run(acked, set(), [], {0: []}, {0: 0})
    assert s["violation_count"] >= 1000 and len(s["violations"]) == 25, s["violation_count"]


def main():
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    failed = 0
    for name, f in tests:
        try:
            f()
            print(f"ok   {name}")
        except AssertionError as e:
            failed += 1
            print(f"FAIL {name}: {e}")
    print(f"checker self-test: {len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
