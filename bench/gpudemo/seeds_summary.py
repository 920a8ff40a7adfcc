"""One row per compressed run of the GPU demo's -json outputs seedS.json in
the folder given (bench/gpudemo/seeds.sh), tab-separated: accuracy drop
against the same seed's baseline in points, fastest and median steps and
the overhead by the fastest, the compression and recomputation times, the
saved activations and their share of the baseline's, and the gradient
cosines; then each mode's mean drop with its standard deviation and
standard error."""
import glob
import json
import statistics
import sys


def seed_of(path):
    return int(path.rsplit("seed", 1)[1].split(".")[0])


drops = {}
for f in sorted(glob.glob(sys.argv[1] + "/seed*.json"), key=seed_of):
    d = json.load(open(f))["Result"]
    b = d["Baseline"]
    for r in d["Runs"]:
        drop = 100 * (b["Accuracy"] - r["Accuracy"])
        drops.setdefault(r["Name"], []).append(drop)
        print("\t".join([
            "seed %d" % seed_of(f), r["Name"],
            "base %.4f" % b["Accuracy"], "acc %.4f" % r["Accuracy"], "drop %.2f" % drop,
            "min %.2f" % r["StepMsMin"], "basemin %.2f" % b["StepMsMin"],
            "over %.1f%%" % (100 * (r["StepMsMin"] / b["StepMsMin"] - 1)),
            "med %.2f" % r["StepMs"], "basemed %.2f" % b["StepMs"],
            "comp %.2f" % r["CompressMs"], "rec %.2f" % r.get("RecomputeMs", 0),
            "saved %.1f MiB" % (r["Saved"] / 2**20), "%.1f%%" % (100 * r["Saved"] / b["Saved"]),
            "cos %.4f" % r["GradCos"], "ref %.4f" % r.get("RefGradCos", 0), "maxb %d" % r["MaxBatch"],
        ]))
for name, ds in drops.items():
    if len(ds) > 1:
        sd = statistics.stdev(ds)
        print("%s\tseeds %d\tmean drop %.3f\tsd %.3f\tse %.3f" % (name, len(ds), statistics.mean(ds), sd, sd / len(ds) ** 0.5))
