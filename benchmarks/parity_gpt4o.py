"""GPT-4o parity with the authors' code: the same question and clip must make the same request,
and the same reply the same choice.

Run: ``.venv/bin/python benchmarks/parity_gpt4o.py [--questions 12] [--quick]`` (no network: a
logging server on 127.0.0.1 stands in for the API; no key is needed or read). ``--quick``: 2
questions, and a skip when the authors' venv (with its GPT-4o packages) is not built yet.

1. Questions: our multiple-choice benchmark built from the synthetic kitchen's annotations; each is
   paired with 8 frames (768x768, RGB, our decoder) of a real EPIC-KITCHENS clip from
   ``shared/data/sample-videos``, so the JPEGs are real footage.
2. Ours: ``run_evaluation`` with the ``openai`` adapter (``gpt-4o-2024-08-06``, default
   protocol ``gpt4o``, ``--parser original``) against the logging server.
3. The authors': ``GPTInferenceAnnotator.predict_images`` from their installed
   ``llavaction/action/chatgpt_utils.py`` (openai 1.68, pydantic 2, OpenCV), in their venv
   (``benchmarks/original_env.py``, ``gpt=True``), against the same server, then their
   ``process_raw_pred`` on the structured reply's ``answer``, as their ``run`` does. Stand-ins
   (printed): the annotator is made without its ``__init__`` (which reads EK100 files) with the
   attributes ``predict_images`` reads; ``torchvision.io`` is an empty module (imported by
   ``ek_eval`` for a debug writer only); ``OPENAI_BASE_URL`` points at the server. Their frames
   are handed over in BGR order, so that ``cv2.imencode`` (which reads BGR) writes the colours
   we send; the authors handed RGB frames, a bug: a second pass hands RGB and compares with our
   ``colour_order="bgr"``.
4. The server answers each question with the same structured reply for both sides (a mix of
   forms: ``C. text``, ``C. text.``, bare text, a wrong letter, ``None. text``, two lines,
   nonsense), and logs every request body.

Targets: system and user texts byte-identical, same number of images with the same pixels,
size and JPEG quantisation tables, same settings (model, temperature, no ``max_tokens``; the
openai 1.68 client's ``parse`` also writes ``"stream": false``, the API's default, which ours
leaves out: counted as the same) and the same ``response_format`` (schema byte for byte); the same
parsed choice for every reply.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from original_env import original_python, ready_python
from results import Report, quick_flag

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared/data/sample-videos/epic-kitchens-avt-demo/248.mp4"
MODEL = "gpt-4o-2024-08-06"
FRAMES = 8
DUMMY_KEY = "sk-parity-benchmark-not-a-key"

AUTHORS_SIDE = r"""
import json, os, sys, types
import numpy as np

PATCHES = []
import llavaction.model  # transformers decides on torchvision here, before the stand-in
for name in ("torchvision", "torchvision.io"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["torchvision"].io = sys.modules["torchvision.io"]
PATCHES.append("torchvision.io -> empty module (ek_eval's debug writer only)")
from llavaction.action import chatgpt_utils
from llavaction.action.ek_eval import process_raw_pred

job = json.loads(open(sys.argv[1]).read())
annotator = chatgpt_utils.GPTInferenceAnnotator.__new__(chatgpt_utils.GPTInferenceAnnotator)
annotator.gpt_model = job["model"]
annotator.clip_length = job["frames"]
annotator.question_type = "mc_GT_random_narration"
annotator.perspective = "first_person"
annotator.handobj_root = None
PATCHES.append("GPTInferenceAnnotator made without __init__ (it reads EK100 files); set: "
               "gpt_model, clip_length, question_type='mc_GT_random_narration', "
               "perspective='first_person', handobj_root=None")
out = []
for item in job["items"]:
    frames = np.load(item["frames"])
    parsed_item = {"options": item["options"], "start_second": item["start"],
                   "end_second": item["end"], "gt_answer": item["gt"]}
    answer = annotator.predict_images(frames, parsed_item)
    prediction = process_raw_pred(answer.answer)  # run(): 'mc_' question types
    out.append({"id": item["id"], "answer": answer.answer, "chatgpt_answer": prediction,
                "correct": prediction == item["gt"]})
json.dump({"results": out, "patches": PATCHES}, open(sys.argv[2], "w"))
"""


def reply_forms(texts: list[str], answer: int, number: int) -> str:
    """The structured reply's ``answer`` for question ``number`` (a mix of forms)."""
    letter = "ABCDEFGHIJ"
    wrong = (answer + 1) % len(texts)
    forms = [
        f"{letter[answer]}. {texts[answer]}",
        f"{letter[wrong]}. {texts[wrong]}.",
        texts[answer],
        f"{letter[answer]}. {texts[wrong]}",  # the text decides
        f"None. {texts[answer]}",
        f"{letter[wrong]}. {texts[wrong]}\n{letter[answer]}. {texts[answer]}. Because...",
        "I cannot tell from these frames.",
        f"The answer is {letter[answer]}.  {texts[answer]}",  # two spaces: no match
    ]
    return forms[number % len(forms)]


class Logger:
    """A loopback chat-completions server: logs each request body (raw bytes and JSON) and
    answers with the structured reply planned for its question."""

    def __init__(self, plan: dict[str, str]) -> None:
        self.plan = plan  # task text -> answer
        self.requests: list[dict] = []
        logger = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                system = body["messages"][0]["content"]
                answer = next(a for task, a in logger.plan.items() if system.endswith(task))
                logger.requests.append({"path": self.path, "raw": raw, "body": body})
                message = {"role": "assistant", "content": json.dumps({"answer": answer}),
                           "refusal": None}  # fmt: skip
                reply = json.dumps({
                    "id": "chatcmpl-parity", "object": "chat.completion", "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1000, "completion_tokens": 10,
                              "total_tokens": 1010},
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> list[dict]:
        taken, self.requests = self.requests, []
        return taken


def image_facts(url: str) -> dict:
    from PIL import Image

    data = base64.b64decode(url.removeprefix("data:image/jpeg;base64,"))
    image = Image.open(io.BytesIO(data))
    return {
        "bytes": data,
        "size": image.size,
        "mode": image.mode,
        "tables": {k: list(v) for k, v in image.quantization.items()},
        "pixels": np.asarray(image.convert("RGB")),
    }


def compare(ours: dict, theirs: dict) -> dict:
    """Field-by-field comparison of two request bodies."""
    o_sys, o_user = ours["messages"]
    t_sys, t_user = theirs["messages"]
    o_images = [image_facts(p["image_url"]["url"]) for p in o_user["content"][1:]]
    t_images = [image_facts(p["image_url"]["url"]) for p in t_user["content"][1:]]
    same_count = len(o_images) == len(t_images)
    pixel_diff = max(
        (int(np.abs(a["pixels"].astype(int) - b["pixels"].astype(int)).max())
         for a, b in zip(o_images, t_images, strict=False)),
        default=0,
    )  # fmt: skip

    def rest(body: dict) -> dict:
        """Everything but the messages; ``stream: false`` (written out by the openai 1.68
        client's ``parse``, the API's default) counts as absent."""
        return {
            k: v for k, v in body.items() if k != "messages" and not (k == "stream" and v is False)
        }

    return {
        "system_text": o_sys == t_sys,
        "user_text": o_user["content"][0] == t_user["content"][0] == {"type": "text", "text": ""},
        "image_parts": same_count
        and all(
            set(a) == set(b) == {"type", "image_url"} and set(a["image_url"]) == {"url"}
            for a, b in zip(o_user["content"][1:], t_user["content"][1:], strict=True)
        ),
        "image_size": same_count
        and all(
            a["size"] == b["size"] and a["mode"] == b["mode"]
            for a, b in zip(o_images, t_images, strict=True)
        ),
        "jpeg_tables": same_count
        and all(a["tables"] == b["tables"] for a, b in zip(o_images, t_images, strict=True)),
        "jpeg_bytes": same_count
        and all(a["bytes"] == b["bytes"] for a, b in zip(o_images, t_images, strict=True)),
        "pixel_max_diff": pixel_diff,
        "settings": rest(ours) == rest(theirs),
        "schema_bytes": json.dumps(ours.get("response_format"))
        == json.dumps(theirs.get("response_format")),
        "no_max_tokens": "max_tokens" not in ours and "max_tokens" not in theirs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=12, help="questions to ask")
    quick_flag(parser)
    args = parser.parse_args()
    report = Report("parity_gpt4o", args.quick)
    if args.quick:
        args.questions = 2
        if ready_python(gpt=True) is None:
            report.skip("the authors' venv with their GPT-4o packages is not built "
                        "(python benchmarks/original_env.py --gpt builds it)")  # fmt: skip

    from verbnoun.bench.build import BuildSettings, build_benchmark
    from verbnoun.bench.questions import read_questions
    from verbnoun.data.kitchen import kitchen_script, write_kitchen_annotations
    from verbnoun.data.video import read_clip
    from verbnoun.evaluate.openai_adapter import OpenAIAdapter
    from verbnoun.evaluate.records import answered
    from verbnoun.evaluate.runner import EvalSettings, run_evaluation

    python = original_python(gpt=True)
    print(f"authors' environment: {python}")
    with tempfile.TemporaryDirectory(prefix="parity-gpt4o-") as tmp:
        root = Path(tmp)
        annotations = write_kitchen_annotations(root / "annotations", kitchen_script(12, 0))
        all_questions = root / "all.jsonl"
        build_benchmark(annotations, all_questions, BuildSettings())
        lines = all_questions.read_text().splitlines()[: args.questions]
        questions_path = root / "questions.jsonl"
        questions_path.write_text("".join(line + "\n" for line in lines))
        questions = read_questions(questions_path)
        frames: dict[str, np.ndarray] = {}
        for number, question in enumerate(questions):
            start = 2.0 + 3.1 * number
            clip = read_clip(SAMPLE, start, start + question.duration, FRAMES)
            frames[question.id] = np.ascontiguousarray(clip.frames)
        plan = {
            q.task(): reply_forms(q.option_texts, q.answer_index, n)
            for n, q in enumerate(questions)
        }
        server = Logger(plan)
        key_env = "VERBNOUN_PARITY_DUMMY_KEY"
        os.environ[key_env] = DUMMY_KEY

        # ours, through the evaluation runner
        adapter = OpenAIAdapter(MODEL, base_url=server.url, api_key_env=key_env)
        run = root / "ours"
        settings = EvalSettings(frames=FRAMES, parser="original")
        run_evaluation(questions_path, adapter, run, settings,
                       frame_source=lambda q: frames[q.id], progress=False)  # fmt: skip
        ours = {r["body"]["messages"][0]["content"]: r["body"] for r in server.take()}
        ours_by_id = {q.id: ours[next(s for s in ours if s.endswith(q.task()))] for q in questions}
        predictions = answered(run)
        config = json.loads((run / "config.json").read_text())
        print("our config.json model_settings:", json.dumps(config["model_settings"]))

        # bgr: our colour_order="bgr" (the authors' swapped channels)
        bgr = OpenAIAdapter(MODEL, base_url=server.url, api_key_env=key_env, colour_order="bgr")
        from verbnoun.evaluate.adapters import Request

        bgr.answer([Request(q, q.prompt(FRAMES), q.task(), frames[q.id]) for q in questions])
        ours_bgr = {r["body"]["messages"][0]["content"]: r["body"] for r in server.take()}

        # the authors', twice: frames in BGR (colours as ours), then RGB (as they did)
        env = {**os.environ, "OPENAI_API_KEY": DUMMY_KEY, "OPENAI_BASE_URL": server.url,
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
        script = root / "authors_side.py"
        script.write_text(AUTHORS_SIDE)
        theirs, results = {}, {}
        for order in ("bgr", "rgb"):
            items = []
            for q in questions:
                path = root / f"{q.id.replace(':', '_')}-{order}.npy"
                array = frames[q.id][..., ::-1] if order == "bgr" else frames[q.id]
                np.save(path, np.ascontiguousarray(array))
                items.append({
                    "id": q.id, "frames": str(path), "start": q.start, "end": q.stop,
                    "options": [f"{'ABCDEFGHIJ'[i]}. {t}" for i, t in enumerate(q.option_texts)],
                    "gt": q.option_texts[q.answer_index],
                })  # fmt: skip
            job = root / f"job-{order}.json"
            job.write_text(json.dumps({"model": MODEL, "frames": FRAMES, "items": items}))
            out = root / f"authors-{order}.json"
            done = subprocess.run([str(python), str(script), str(job), str(out)], env=env,
                                  capture_output=True, text=True, cwd=root)  # fmt: skip
            if done.returncode:
                raise SystemExit(f"the authors' side failed:\n{done.stderr[-4000:]}")
            data = json.loads(out.read_text())
            results[order] = {r["id"]: r for r in data["results"]}
            bodies = {r["body"]["messages"][0]["content"]: r["body"] for r in server.take()}
            theirs[order] = {
                q.id: bodies[next(s for s in bodies if s.endswith(q.task()))] for q in questions
            }
        print("authors' side stand-ins:")
        for note in data["patches"]:
            print("  -", note)
        print("  - OPENAI_BASE_URL -> the logging server; OPENAI_API_KEY -> a dummy string")
        print("  - frames handed in BGR order for the main comparison (the authors handed RGB)")

        rows = {q.id: compare(ours_by_id[q.id], theirs["bgr"][q.id]) for q in questions}
        bug_rows = {
            q.id: compare(ours_bgr[next(s for s in ours_bgr if s.endswith(q.task()))],
                          theirs["rgb"][q.id])
            for q in questions
        }  # fmt: skip
        fields = [k for k in next(iter(rows.values())) if k != "pixel_max_diff"]
        print(f"\nrequests compared: {len(rows)} questions x {FRAMES} frames "
              f"({next(iter(ours.values()))['messages'][1]['content'][1]['image_url']['url'][:30]}"
              "...)")  # fmt: skip
        print(f"{'field':<16}{'ours=authors (RGB)':>20}{'ours bgr=authors as released':>30}")
        for field in fields:
            a = sum(bool(r[field]) for r in rows.values())
            b = sum(bool(r[field]) for r in bug_rows.values())
            print(f"{field:<16}{f'{a}/{len(rows)}':>20}{f'{b}/{len(rows)}':>30}")
        diff = max(r["pixel_max_diff"] for r in rows.values())
        bug_diff = max(r["pixel_max_diff"] for r in bug_rows.values())
        print(f"{'pixel_max_diff':<16}{diff:>20}{bug_diff:>30}")
        sample = ours_by_id[questions[0].id]
        print("\nsystem text (question 1):", json.dumps(sample["messages"][0]["content"])[:160],
              "...")  # fmt: skip
        print("response_format:", json.dumps(sample["response_format"]))
        print("other keys, ours:", {k: v for k, v in sample.items()
                                    if k not in ("messages", "response_format")})  # fmt: skip
        authors_sample = theirs["bgr"][questions[0].id]
        print("other keys, authors':", {k: v for k, v in authors_sample.items()
                                        if k not in ("messages", "response_format")})  # fmt: skip

        same_choice = 0
        print(f"\n{'question':<14}{'reply answer':<44}{'authors':>9}{'ours':>6}{'same':>6}")
        for q in questions:
            mine = predictions[q.id]
            them = results["bgr"][q.id]
            index = next((i for i, t in enumerate(q.option_texts)
                          if t == them["chatgpt_answer"]), None)  # fmt: skip
            same = index == mine["choice"] and them["correct"] == mine["correct"]
            same_choice += same
            shown = json.dumps(plan[q.task()])[:42]
            print(f"{q.id[:13]:<14}{shown:<44}{index!s:>9}{mine['choice']!s:>6}"
                  f"{'yes' if same else 'NO':>6}")  # fmt: skip
        accuracy_them = sum(r["correct"] for r in results["bgr"].values()) / len(questions)
        accuracy_us = sum(predictions[q.id]["correct"] for q in questions) / len(questions)
        print(f"accuracy on these replies: authors {accuracy_them:.3f}, ours {accuracy_us:.3f}")

        request_ok = all(
            all(r[f] for f in fields if f != "jpeg_bytes") and r["pixel_max_diff"] == 0
            for r in rows.values()
        )
        ok = request_ok and same_choice == len(questions)
        print(f"\nTARGET requests identical (texts, images, quality, settings, schema; RGB aside) "
              f"on {sum(all(r[f] for f in fields if f != 'jpeg_bytes') for r in rows.values())}"
              f"/{len(rows)}, JPEG bytes identical on "
              f"{sum(r['jpeg_bytes'] for r in rows.values())}/{len(rows)}, same parsed choice "
              f"on {same_choice}/{len(questions)}: {'MET' if ok else 'NOT MET'}")  # fmt: skip
        identical = sum(all(r[f] for f in fields if f != "jpeg_bytes") and r["pixel_max_diff"] == 0
                        for r in rows.values())  # fmt: skip
        report.figure("requests_differing", len(rows) - identical, f"of {len(rows)}",
                      reference="the authors' GPTInferenceAnnotator on the same questions "
                                f"(JPEG bytes identical on "
                                f"{sum(r['jpeg_bytes'] for r in rows.values())}/{len(rows)})",
                      target="0", met=identical == len(rows))  # fmt: skip
        report.figure("choices_differing", len(questions) - same_choice, f"of {len(questions)}",
                      reference="the authors' process_raw_pred on the same replies",
                      target="0", met=same_choice == len(questions))  # fmt: skip
        server.server.shutdown()
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
