"""The claims of the ledger (``benchmarks/claims.py``): the papers' numbers, where they are stated, the
result that measures each, the protocols that result must record, and the verdict rules."""

from __future__ import annotations

from typing import Any

from claims import Claim

RATINGS = (
    "Jester1_10shot15val",
    "Jester1_20shot30val",
    "MovieLens100K_10shot15val",
    "MovieLens100K_20shot30val",
)
AMAML_SOURCE = "Li et al., AISTATS 2023, Table 2 (100 inner steps; as printed in shib0li/Adjoint-MAML images/amaml-slides.pdf)"
AMAML_TABLE2 = {
    "Jester1_10shot15val": "0.069±0.005",
    "Jester1_20shot30val": "0.044±0.003",
    "MovieLens100K_10shot15val": "0.057±0.006",
    "MovieLens100K_20shot30val": "0.021±0.002",
}
AMAML_CODE = (
    "forward flow: text RK45, code torchdiffeq rk4 (core/meta_learner.py)",
    "adjoint: text Heun, code explicit Euler by default (infrastructure/configs.py heun=False)",
    "a proximal term meta_reg=1.0 is on in the code (experiment.sh), absent from the text",
    "meta step: code plain SGD at meta_lr 0.01 (meta_learner.py update, experiment.sh); here Adam 1e-3 for every method",
    "test-time fine-tuning: code Adam 1e-3 (infrastructure/misc.py); here the protocol's SGD",
    "metric: code plain RMSE of z-scored targets (misc.py); no ratings loader released",
)
LEAP_CODE = (
    "the test alphabets shift with n in the authors' src/omniglot/data.py (shuffle, first n train, next 10 test); "
    "here the 10 listed test alphabets are fixed for every n",
    "fine-tuning baseline in the code: multi-headed pretraining, SGD 0.1 (used here)",
)
CTS_CODE = (
    "momentum buffers are carried across trajectory resets in the released code (audit, issue 18)",
    "the released meta_train scripts unpack 3 of the 4 values the loader returns (audit, issue 18)",
)


def ci(pair: list[float]) -> str:
    mean, half = pair
    return f"{mean:.3g}" if half != half or half == 0 else f"{mean:.3g} ± {half:.2g}"  # half != half: NaN


def ratings_protocols(name: str) -> dict[str, str]:
    import metaenvs

    dist = metaenvs.make(f"Ratings/{name}-v0")
    return {f"protocols|{dist.id}|table2": dist.protocol.customised(budget=100, seeds=(0,)).hash}


def ratings_measure(name: str):
    def measure(data: dict) -> tuple[str, str, str, str]:
        rows = data["tables_nrmse_mean_ci95_over_seeds"]["table2"][f"Ratings/{name}-v0"]
        methods = {k: v for k, v in rows.items() if not k.startswith("baseline:") and k != "scratch"}
        baselines = {k: v for k, v in rows.items() if k.startswith("baseline:")}
        best_method = min(methods, key=lambda k: methods[k]["nrmse"][0])
        best_base = min(baselines, key=lambda k: baselines[k]["nrmse"][0])
        amaml = rows.get("amaml-100")
        ours = (
            (
                f"A-MAML {ci(amaml['nrmse'])} ({amaml['seeds']} seeds, {amaml['meta_steps']} meta steps); "
                if amaml
                else "A-MAML not run; "
            )
            + f"best meta-learner {best_method} {ci(methods[best_method]['nrmse'])} ({methods[best_method]['seeds']} seeds); "
            + f"best trivial {best_base.removeprefix('baseline:')} {ci(baselines[best_base]['nrmse'])}; "
            + f"scratch {ci(rows['scratch']['nrmse'])}"
        )
        beats = (
            methods[best_method]["nrmse"][0] + methods[best_method]["nrmse"][1]
            < baselines[best_base]["nrmse"][0]
        )
        note = (
            "the best meta-learner beats every trivial baseline"
            if beats
            else "no meta-learner beats the best trivial baseline beyond its CI"
        )
        note += (
            "; A-MAML ranks first"
            if best_method.startswith("amaml")
            else f"; A-MAML does not rank first ({best_method} does)"
        )
        scale = data["scale"]
        frac = (
            f"{scale['meta_steps']} of 5000 meta updates ({scale['fraction_of_paper_meta_steps']:.0%}) for MAML / FOMAML / "
            f"Reptile; iMAML {scale['imaml_fraction_of_paper_meta_steps']:.0%}; A-MAML {scale['amaml_fraction_of_paper_meta_steps']:.0%}"
        )
        return ours, frac, "not reachable as published", note

    return measure


def leap_cell(summary: dict, key: str) -> tuple[str, bool]:
    """The sorted test errors of every method at ``key`` and whether Leap's 95% CI is clear below all."""
    errors = {a: summary[a][key]["final_error"] for a in summary}
    cells = ", ".join(f"{a} {ci(v)}" for a, v in sorted(errors.items(), key=lambda kv: kv[1][0]))
    leap = errors["leap"]
    return cells, all(leap[0] + leap[1] < v[0] - v[1] for a, v in errors.items() if a != "leap")


def leap_verdict(leap_best: bool, where: str) -> tuple[str, str]:
    """The ledger's verdict and note for a "Leap beats every other method" claim."""
    if leap_best:
        return "direction only", f"Leap's error is below every other method's beyond the CIs {where}"
    return "not reproduced", f"Leap is not below every other method beyond the CIs {where}"


def omniglot_protocols() -> dict[str, str]:
    from leap_omniglot import distribution, eval_protocol

    return {f"protocols|{n}": eval_protocol(distribution(n, 1), 1).hash for n in (1, 5, 25)}


def omniglot_measure(data: dict) -> tuple[str, str, str, str]:
    summary, counts = data["summary"], [n for n in ("1", "5", "25") if n in data["summary"]["leap"]]
    parts, leap_best = [], True
    for n in counts:
        cells, clear = leap_cell(summary, n)
        base = data.get("baselines", {}).get(n, {}).get("nearest_centroid", {}).get("final_error")
        parts.append(
            f"n={n}: test error {cells}" + (f", nearest centroid {base:.3f}" if base is not None else "")
        )
        if int(n) > 4:
            leap_best &= clear
    scale = data["scale"]
    frac = (
        f"{scale['meta_steps']} meta steps x meta-batch {scale['meta_batch']} = {scale['fraction_of_paper_meta_tasks']:.2%} "
        f"of 1000 x 20; {scale['conv_channels']} of 64 filters; augment {scale['augment']}; {scale['run_seeds']} seeds"
    )
    return "; ".join(parts), frac, *leap_verdict(leap_best, "for n > 4")


MULTICV_HELD_OUT = ("mnist", "cifar10")  # the digits fold was not run this round


def multicv_protocols() -> dict[str, str]:
    import metaenvs

    return {
        f"protocols|{h}": metaenvs.make(f"Vision/MultiCVLocal_{h}-v0").protocol.hash for h in MULTICV_HELD_OUT
    }


def multicv_measure(data: dict) -> tuple[str, str, str, str]:
    summary, parts, leap_best = data["summary"], [], True
    for held in data["dists"]:
        cells, clear = leap_cell(summary, held)
        base = data["baselines"][held]["nearest_centroid"]["final_error"]
        parts.append(f"{held} held out: test error {cells}, nearest centroid {base:.3f}")
        leap_best &= clear
    scale = data["scale"]
    frac = (
        f"{scale['meta_steps']} meta steps x {scale['meta_batch']} data sets, {scale['inner_steps']} inner steps; "
        f"{len(scale['pool'])} data sets on hand, {scale['conv_filters']}-filter conv4; {scale['run_seeds']} seeds"
    )
    return "; ".join(parts), frac, *leap_verdict(leap_best, "on every held-out data set")


def atari_protocols() -> dict[str, str]:
    import metaenvs

    h = metaenvs.make("Atari/LeapPool-100k-v0").protocol.hash
    return {f"summary|{a}|0|protocol_hash": h for a in ("leap", "reptile", "scratch")}


def atari_measure(data: dict) -> tuple[str, str, str, str]:
    s = data["summary"]
    cells = {a: s[a]["0"]["human_normalised"] for a in ("leap", "reptile", "scratch", "random_policy")}
    text = "; ".join(
        f"{a} IQM HNS {v['iqm']:.4f} [{v['ci95'][0]:.4f}, {v['ci95'][1]:.4f}]" for a, v in cells.items()
    )
    leap, scratch = cells["leap"], cells["scratch"]
    separated = leap["ci95"][0] > scratch["ci95"][1]
    return (
        text,
        "0.0125% of Leap's 100 meta steps x 16 games x 5M steps; evaluation uncut (100k steps x 3 seeds)",
        "direction only" if separated else "not reproduced",
        "every initialization scores as a random policy does" if not separated else "",
    )


def cts_protocols() -> dict[str, str]:
    import metaenvs

    dist = metaenvs.make("Synthetic/RotatedHimmelblau-v0")
    return {f"protocols|{dist.id}": dist.protocol.hash}


def cts_measure(data: dict) -> tuple[str, str, str, str]:
    s = data["summary"]
    final = {m: s[m][max(s[m], key=int)] for m in ("cts", "cts_accurate", "reptile")}
    spent = {m: max(int(k) for k in s[m]) for m in final}
    reptile_best = final["reptile"][0]
    reached = [int(k) for k, v in s["cts"].items() if v[0] <= reptile_best]
    eps = data["summary"]["epsilon_mean_by_k"]
    text = (
        f"after {spent['cts']} inner steps per task: CTS {ci(final['cts'])}, CTS-accurate {ci(final['cts_accurate'])}; "
        f"Reptile after {spent['reptile']}: {ci(final['reptile'])}; CTS reaches Reptile's final loss after "
        f"{min(reached) if reached else 'never'} steps; mean epsilon_k over k: {sum(eps) / len(eps):.3f}"
    )
    ok = bool(reached) and min(reached) < spent["reptile"]
    return (
        text,
        "the paper's toy at its own size (8 tasks, K = 100, 3 resets, 8 starts)",
        "reproduced" if ok else "not reproduced",
        "",
    )


def claims() -> list[Claim]:
    out = []
    for name in RATINGS:
        out.append(
            Claim(
                key=f"amaml-ratings-{name}",
                paper="A-MAML",
                where=AMAML_SOURCE,
                claim=f"A-MAML has the lowest held-out nRMSE on {name} (Table 2, 100 inner steps, MAML 10)",
                paper_number=f"A-MAML {AMAML_TABLE2[name]}",
                command="python benchmarks/amaml_ratings.py --tables 2",
                result="results/amaml_ratings/result.json",
                protocols=lambda name=name: ratings_protocols(name),
                measure=ratings_measure(name),
                deviations=AMAML_CODE,
            )
        )
    out += [
        Claim(
            key="amaml-ratings-table1",
            paper="A-MAML",
            where=AMAML_SOURCE.replace("Table 2 (100", "Table 1 (50"),
            claim="A-MAML has the lowest nRMSE with 50 inner steps (Table 1, MAML 5), every data set",
            paper_number="A-MAML 0.074 / 0.027 / 0.053 / 0.023",
            command="python benchmarks/amaml_ratings.py --tables 1",
            result=None,
            deviations=AMAML_CODE,
            needs="Table 1 was not re-run at 1000 meta steps this round (about 50 core-minutes here); its 50-meta-step run was withdrawn",
        ),
        Claim(
            key="amaml-synthetic",
            paper="A-MAML",
            where="Li et al., AISTATS 2023, Fig. 2 / Table 3 (CosMixture, Alpine)",
            claim="A-MAML fits held-out CosMixture / Alpine functions better than MAML, iMAML, FOMAML, Reptile",
            paper_number="ordering of the methods",
            command="python benchmarks/amaml_quality.py --meta-steps 100 --seeds 3",
            result=None,
            deviations=AMAML_CODE,
            needs="the earlier run (40 Adam meta steps, which act like sign-SGD, so A-MAML and MAML agreed to 5 digits; MAML "
            "given 200 inner steps where the paper gives it a tenth) was withdrawn; the corrected benchmark (MAML 20 steps, "
            "recorded protocols) needs about 45 core-minutes and was not run this round",
        ),
        Claim(
            key="leap-omniglot",
            paper="Leap",
            where="Flennerhag et al., ICLR 2019, Fig. 2",
            claim="Leap beats Reptile, FOMAML, multi-headed fine-tuning and no pretraining once there are more than 4 pretraining alphabets",
            paper_number="ordering (curves; no table of values)",
            command="python benchmarks/leap_omniglot.py --alphabets 1,5,25 --seeds 3 --meta-steps 30 --channels 16 --augment 1",
            result="results/leap_omniglot/result.json",
            protocols=omniglot_protocols,
            measure=omniglot_measure,
            deviations=LEAP_CODE,
        ),
        Claim(
            key="leap-multicv",
            paper="Leap",
            where="Flennerhag et al., ICLR 2019, Table 2 (Multi-CV)",
            claim="Leap beats Reptile, fine-tuning and scratch on Multi-CV leave-one-out",
            paper_number="Leap best on every held-out data set",
            command="python benchmarks/leap_multicv.py --held-out mnist,cifar10 --seeds 3 --meta-steps 20 --inner-steps 100",
            result="results/leap_multicv/result.json",
            protocols=multicv_protocols,
            measure=multicv_measure,
            deviations=(
                *LEAP_CODE,
                "pool: MNIST, CIFAR-10 and scikit-learn's digits (on hand), not the paper's",
            ),
        ),
        Claim(
            key="leap-atari",
            paper="Leap",
            where="Flennerhag et al., ICLR 2019, Fig. 3",
            claim="a Leap initialization learns held-out Atari games faster than a random one",
            paper_number="curves above scratch on held-out games",
            command="python benchmarks/atari_leap.py --config 100k --torch-threads 2",
            result="results/atari_leap_100k/result.json",
            protocols=atari_protocols,
            measure=atari_measure,
        ),
        Claim(
            key="cts-himmelblau",
            paper="CTS",
            where="Shin et al., ICML 2021, Fig. 2-3 (rotated Himmelblau toy)",
            claim="CTS reaches a given meta-loss with fewer inner steps than Reptile, its shifting error small",
            paper_number="curves",
            command="python benchmarks/cts_himmelblau.py",
            result="results/cts_himmelblau/result.json",
            protocols=cts_protocols,
            measure=cts_measure,
            deviations=CTS_CODE,
        ),
        Claim(
            key="cts-large-scale",
            paper="CTS",
            where="Shin et al., ICML 2021, Tables 1-2 (TinyImageNet / ImageNet to 8 targets)",
            claim="CTS beats Reptile, FOMAML, Leap and fine-tuning on large-scale heterogeneous transfer",
            paper_number="Tables 1-2",
            command=None,
            result=None,
            deviations=CTS_CODE,
            needs="TinyImageNet or ImageNet plus the 8 target data sets and a GPU (out of scope of issue 18)",
        ),
    ]
    return out


CLAIMS: list[Any] = claims()
