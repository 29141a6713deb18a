"""`cnc check`: a verdict a CI pipeline can act on (README "Efficiency and CI", docs/check.md).

Opens any experiment the app opens, fills the cache like `--precompute-only`, applies a policy's
gates to every candidate against the base, prints a table, writes the reports asked for, and
exits 0 (every candidate passes), 1 (a candidate fails a gate) or 2 (bad input: experiment,
policy, base or candidate).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="cnc check", description="Gate compressed variants against a base: exit 0 if "
                                "every candidate passes the policy, 1 if one fails, 2 on bad input.")
    p.add_argument("--config", default=env("CNC_CONFIG"), required=env("CNC_CONFIG") is None,
                   help="the experiment, as for `cnc --config` (config, experiment file, Tracker run, mlflow:..., ...)")
    p.add_argument("--policy", required=True, help="policy file (YAML or JSON): docs/check.md")
    p.add_argument("--base", help="the base model (default: the policy's `base`, else the experiment's only root)")
    p.add_argument("--cache-dir", default=env("CNC_CACHE_DIR"), help="summary cache (as for `cnc`)")
    p.add_argument("--json", dest="json_path", help="write the JSON report here")
    p.add_argument("--markdown", dest="md_path", help="write the Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)")
    p.add_argument("--junit", dest="junit_path", help="write JUnit XML here")
    p.add_argument("--app-url", default=env("CNC_APP_URL", "http://127.0.0.1:8050"),
                   help="where the app serves this experiment, for the links (env CNC_APP_URL)")
    p.add_argument("--no-precompute", action="store_true", help="use only what the cache holds")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from cnc.analysis.ci_gates import PolicyError, evaluate, parse_policy
    from cnc.analysis.eval_settings import differences
    from cnc.analysis.generative_behaviors import is_generative
    from cnc.app import check_report
    from cnc.app.check_inputs import Inputs, resolve_models, score_for
    from cnc.app.loading import load
    from cnc.experiment.errors import ConfigError, ExperimentError, TaskError
    from cnc.experiment.forest import read_data_file

    try:
        policy = parse_policy(read_data_file(Path(args.policy)), args.policy)
        ctx = load(args.config, args.cache_dir, precompute=not args.no_precompute, progress=False)
        exp = ctx.experiment
        base, candidates = resolve_models(exp, policy, args.base)
        inputs = Inputs(ctx, base, candidates)
        keys = {(g.metric, g.score, g.device) for g in policy.gates if g.metric is not None}
        metrics = {k: inputs.metric(exp, *k) for k in keys}
        scores = {k: score_for(k[0], inputs.task, k[1]) for k in keys}  # (score, lm-eval task)
        kinds = {g.kind for g in policy.gates}
        results = evaluate(policy, candidates, metrics,
                           inputs.flip_rates() if "max_flip_rate" in kinds else {},
                           inputs.mean_kls() if "max_mean_kl" in kinds else {},
                           {"max_mean_kl": inputs.kl_note(exp)} if "max_mean_kl" in kinds else None)
    except (ConfigError, ExperimentError, TaskError, PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = check_report.build_report(
        experiment=exp.source, policy_path=args.policy, policy=policy, base=base, candidates=candidates,
        results=results, scores=scores, generative=is_generative(inputs.task), app_url=args.app_url,
        warnings=_differences(exp, [base, *candidates], policy, differences))
    check_report.write(report, args.json_path, args.md_path, args.junit_path)
    print(check_report.table(report))
    return EXIT_PASS if report["passed"] else EXIT_FAIL


def _differences(exp, ids: list[str], policy, differences) -> list[str]:
    """Evaluation differences bearing on the gated metrics, each benchmark metric on its gate's device."""
    from cnc.experiment.benchmarks.devices import on_device

    found: list[str] = []
    for gate in (g for g in policy.gates if g.metric):
        view = on_device(exp, gate.device) if gate.device else exp
        found.extend(w for w in differences(view, ids, [gate.metric]) if w not in found)
    return found


def main(argv: list[str]) -> int:
    return run(parse_args(argv))
