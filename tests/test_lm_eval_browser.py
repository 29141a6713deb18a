"""An experiment of real lm-evaluation-harness runs in headless Chromium: Behaviors opens on the top
change in outputs and shows that document's answers of the base and of each variant side by side,
as the samples files hold them."""
from __future__ import annotations

from tests.conftest import screenshot, wait_for
from tests.lmeval_harness import MC_TASK
from tests.test_behaviors_browser import query_of, wait_until
from tests.test_generative_behaviors_browser import outputs
from tests.test_lm_eval import MODELS, samples, write_experiment


def answers(runs: dict, key: tuple[str, int]) -> dict[str, str]:
    """Each model's answer to one document, read from its samples file (multiple choice: the
    choice with the highest log-likelihood)."""
    task, doc_id = key
    out = {}
    for mid in MODELS:
        line = next(s for s in samples(runs[mid], task) if s["doc_id"] == doc_id)
        if task == MC_TASK:
            lls = [float(r[0]) for r in line["filtered_resps"]]
            out[mid] = line["doc"]["choices"][lls.index(max(lls))]
        else:
            out[mid] = line["filtered_resps"][0]
    return out


def test_one_documents_answers_side_by_side(lmeval_runs, tmp_path, serve, chrome):
    from cnc.app.cli import load

    ctx = load(str(write_experiment(tmp_path, lmeval_runs)), str(tmp_path / "cache"), progress=False)
    keys = ctx.task_data()["keys"]
    url = serve(ctx)
    # the Overview: the tree, the scatterplot of the harness's task metrics, Selection Details
    chrome.get(url + "/?sel=" + ",".join(MODELS))
    wait_for(chrome, ".scatter-panel .js-plotly-plot")
    wait_until(lambda: "3 models" in chrome.find_element("css selector", ".details-panel").text)
    pruned_acc = ctx.experiment.models["pruned"].metrics[f"{MC_TASK}/acc"]
    assert f"{pruned_acc:.1%}" in chrome.find_element("css selector", ".details-panel").text
    chrome.execute_script("document.querySelector('.details-panel').scrollIntoView()")
    screenshot(chrome, "lm_eval_selection_details")
    x_title = chrome.find_element("css selector", ".scatter-panel .xtitle").text
    assert x_title.startswith(("tiny_sums_gen/exact_match,strict-match", "tiny_sums_mc/acc"))
    assert "3 models" in chrome.find_element("css selector", "header").text
    chrome.get(url + "/compare?models=" + ",".join(MODELS))
    wait_for(chrome, ".bh-outputs tr[data-model='pruned']")
    title = chrome.find_element("css selector", ".bh-detail h4").text
    assert "the top change in outputs" in title
    top = int(title.split("#")[1].split()[0])
    shown, expected = outputs(chrome), answers(lmeval_runs, tuple(keys[top]))
    assert shown == expected and expected["pruned"] != expected["base"]
    detail = chrome.find_element("css selector", ".bh-detail").text
    assert chrome.find_element("css selector", ".bh-prompt").text == ctx.task_data()["prompts"][top]
    assert "Reference: " + ctx.task_data()["references"][top][0] in detail
    screenshot(chrome, "lm_eval_top_change")

    # a document of the multiple-choice task, opened by its link: the chosen answers
    mc = next(i for i, (task, _) in enumerate(keys) if task == MC_TASK
              and len(set(answers(lmeval_runs, tuple(keys[i])).values())) > 1)
    chrome.get(url + "/compare?models=" + ",".join(MODELS) + f"&brows=instances&bi={mc}")
    wait_for(chrome, ".bh-outputs tr[data-model='pruned']")
    wait_until(lambda: chrome.find_element("css selector", ".bh-detail h4").text == f"Instance #{mc}")
    wait_until(lambda: outputs(chrome) == answers(lmeval_runs, tuple(keys[mc])))
    assert query_of(chrome).get("bi") == str(mc)
    choices = " | ".join(ctx.task_data()["choices"][mc])
    assert chrome.find_element("css selector", ".bh-doc").text == \
        f"Task {MC_TASK} · document {keys[mc][1]} · choices: {choices}"
    assert "acc_norm" in chrome.find_element("css selector", ".bh-outputs thead").text  # this task's scores
    assert "strict-match" not in chrome.find_element("css selector", ".bh-outputs thead").text  # not the other's
    screenshot(chrome, "lm_eval_multiple_choice")
    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors and not chrome.find_elements("css selector", ".dash-fe-error__title")
