"""``verbnoun report``: one static HTML page comparing runs (no server, no external assets).

The page holds the comparison table of ``score``, accuracy plots (matplotlib, inline PNG), and a
browsable list of questions: a contact sheet of the frames the model saw (when the videos are
given), the options, each run's answer and the correct one, with a filter for questions some run
got wrong (also reachable as ``report.html?wrong=1``). Every string shown is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path

from verbnoun.bench.prompts import letter
from verbnoun.bench.questions import Question
from verbnoun.evaluate.score import Run, compare
from verbnoun.fileio import atomic_write_bytes

FILTER_SCRIPT = """
function applyFilter(onlyWrong) {
  document.querySelectorAll('.question').forEach(function (row) {
    row.style.display = (onlyWrong && row.dataset.wrong !== '1') ? 'none' : '';
  });
  var shown = document.querySelectorAll('.question:not([style*="none"])').length;
  document.getElementById('shown').textContent = shown;
}
document.addEventListener('DOMContentLoaded', function () {
  var box = document.getElementById('only-wrong');
  box.checked = new URLSearchParams(window.location.search).get('wrong') === '1';
  box.addEventListener('change', function () { applyFilter(box.checked); });
  applyFilter(box.checked);
});
"""
STYLE = (
    "body{font-family:sans-serif;max-width:72em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px 8px;"
    "text-align:left;vertical-align:top}.right{color:#176f2c}.wrong{color:#b3261e}"
    ".question{border-top:1px solid #ddd;padding:.5em 0}.sheet{max-width:100%}"
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _png_data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def accuracy_plot(rows: Sequence[dict]) -> bytes:
    """A bar chart of each run's accuracy with its 95% interval, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [Path(r["run"]).name for r in rows]
    values = [100 * r["accuracy"] for r in rows]
    errors = [
        [100 * (r["accuracy"] - r["ci95"][0]) for r in rows],
        [100 * (r["ci95"][1] - r["accuracy"]) for r in rows],
    ]
    figure, axis = plt.subplots(figsize=(max(4, 1.3 * len(rows) + 2), 3.2), dpi=100)
    axis.bar(labels, values, yerr=errors, capsize=4, color="#4c72b0")
    axis.set_ylabel("accuracy (%)")
    axis.set_ylim(0, 100)
    axis.set_title("accuracy with 95% bootstrap interval")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _question_block(
    question: Question, runs: Sequence[Run], sheet: bytes | None
) -> tuple[str, bool]:
    answers = []
    wrong = False
    for run in runs:
        record = run.predictions.get(question.id)
        if record is None:
            answers.append(f"<li>{_e(run.label)}: <i>not answered</i></li>")
            continue
        choice = record["choice"]
        if "action_id" in record and "method" in record:  # open vocabulary: the mapped action
            shown = f"{record['action_id']} ({record['method']})" if record["action_id"] else None
            shown = shown or "unmapped"
        else:
            shown = letter(choice) if choice is not None else "unparsed"
        css = "right" if record["correct"] else "wrong"
        wrong |= not record["correct"]
        answers.append(
            f"<li>{_e(run.label)}: <span class='{css}'>{_e(shown)}</span> "
            f"<small>(raw: {_e(record['raw'][:200])})</small></li>"
        )
    options = "".join(
        f"<li{' class=right' if i == question.answer_index else ''}>{_e(letter(i))}. {_e(o.text)}"
        f" <small>[{_e(o.action_id)}, {_e(o.source)}]</small></li>"
        for i, o in enumerate(question.options)
    )
    image = f"<img class='sheet' src='{_png_data_url(sheet)}' alt='frames'>" if sheet else ""
    correct = question.answer_letter or "none (truth not among the options)"
    block = (
        f"<div class='question' data-wrong='{int(wrong)}' id='{_e(question.id)}'>"
        f"<h3>{_e(question.id)} <small>{_e(question.video_id)} "
        f"{question.start:.2f}-{question.stop:.2f} s</small></h3>{image}"
        f"<p>narration: <b>{_e(question.narration)}</b>; correct: <b>{_e(correct)}</b></p>"
        f"<ol type='A' style='list-style:none;padding-left:0'>{options}</ol>"
        f"<ul>{''.join(answers)}</ul></div>"
    )
    return block, wrong


def render_report(
    runs: Sequence[Run],
    *,
    frames_of: Callable[[Question], object] | None = None,
    max_questions: int = 300,
    title: str = "verbnoun evaluation report",
) -> str:
    """The whole page as a string."""
    from verbnoun.data.images import contact_sheet, png_bytes

    comparison = compare(list(runs))
    rows = "".join(
        f"<tr><td>{_e(r['run'])}</td><td>{_e(r['model'])}</td>"
        f"<td>{r['answered']}/{r['questions']}</td><td>{100 * r['accuracy']:.1f}</td>"
        f"<td>{100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f}</td>"
        f"<td>{100 * r['unparsed_rate']:.1f}%</td></tr>"
        for r in comparison["runs"]
    )
    paired = "".join(
        f"<tr><td>{_e(p['a'])}</td><td>{_e(p['b'])}</td><td>{p['questions']}</td>"
        f"<td>{p['a_only']}</td><td>{p['b_only']}</td><td>{p['p_value']:.3g}</td></tr>"
        for p in comparison["paired"]
    )
    plot = _png_data_url(accuracy_plot(comparison["runs"]))
    questions = list(runs[0].questions)[:max_questions]
    blocks = []
    for question in questions:
        sheet = png_bytes(contact_sheet(frames_of(question))) if frames_of else None
        blocks.append(_question_block(question, runs, sheet)[0])
    return "\n".join(
        [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{_e(title)}</title><style>{STYLE}</style>",
            f"<script>{FILTER_SCRIPT}</script></head><body>",
            f"<h1>{_e(title)}</h1>",
            "<h2>runs</h2><table><tr><th>run</th><th>model</th><th>answered</th>"
            f"<th>accuracy</th><th>95% CI</th><th>unparsed</th></tr>{rows}</table>",
            "<h2>paired tests (exact McNemar)</h2><table><tr><th>a</th><th>b</th>"
            "<th>questions</th><th>right in a only</th><th>right in b only</th><th>p</th></tr>"
            f"{paired}</table>",
            f"<h2>accuracy</h2><img id='accuracy-plot' src='{plot}' alt='accuracy plot'>",
            f"<h2>questions (<span id='shown'>{len(blocks)}</span> of {len(questions)} shown)</h2>",
            "<label><input type='checkbox' id='only-wrong'> only questions some run got wrong"
            "</label>",
            *blocks,
            "</body></html>\n",
        ]
    )


def write_report(runs: Sequence[Run], out: str | Path, **options) -> Path:
    """Write the page atomically; returns its path."""
    out = Path(out)
    atomic_write_bytes(out, render_report(runs, **options).encode("utf-8"))
    return out
