"""The adaptive limit and the fake server's busy share over time, for one 4,000-row grow at C=128, L=0.5 s:
where a run's utilization goes (the ramp, a round's commit, the tail).

    .venv/bin/python bench/ramp_trace.py chat 1      # API (chat or completions), adaptive (1) or fixed (0)
"""
import sys, time, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import teacher_bench as tb
from selfinstruct.teacher import adaptive
from selfinstruct.core.config import build_config

api = sys.argv[1] if len(sys.argv) > 1 else "chat"
adaptive_on = (sys.argv[2] if len(sys.argv) > 2 else "1") == "1"
events = []
# The controller is pure and keeps no history; wrapping its one setter records every change of the limit.
orig = adaptive.AimdLimit._set
def traced(self, limit):
    orig(self, limit); events.append((time.perf_counter(), self.limit, self.slow_start, self.epoch))
adaptive.AimdLimit._set = traced
work = Path(tempfile.mkdtemp())
server = tb.FakeServer(0.5, 128)
config = build_config({"backend": "openai", "base_url": [server.base_url], "api": api, "out": work / "o",
                       "target": 4000, "concurrency": 128, "model": "fake-teacher",
                       "adaptive_concurrency": adaptive_on})
t0 = time.perf_counter()
with tb.BusyProbe(server, 128, every=0.25) as probe:
    r = tb.grow(config)
t1 = time.perf_counter()
st = server.stats(); server.stop()
print(f"wall {t1-t0:.1f} accepted {r.accepted} prompts {st['prompts']} of C/L {st['prompts']/(t1-t0)/256:.0%}")
for t, lim, ss, ep in events[:40]:
    print(f"  {t-t0:6.2f}s limit {lim:6.1f} slow={ss} epoch={ep}")
print("decreases/limit changes:", len(events))
prev = None
for (t, b) in probe.samples[::2]:
    if prev: print(f"  {prev[0]-t0:5.1f}-{t-t0:5.1f}s busy {(b-prev[1])/(128*(t-prev[0])):.0%}")
    prev = (t, b)
