"""The web page's JSON API through FastAPI's test client: answers for real digits, the choice of model, and a
4xx answer with a message for every kind of bad input, after which the server still answers."""
import argparse
import asyncio
import base64
import io
import json
import shutil
import socket
import tempfile

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from starlette import formparsers

from mnist_utils.app import create_app, main, port_number, serving_problem
from mnist_utils.checkpoints import paths, save_checkpoint
from mnist_utils.inspection import count_parameters
from mnist_utils.preprocess import MAX_BYTES, preprocess
from models import Model_1, Model_3
from pictures import blank, png_header_only


@pytest.fixture(scope="module")
def models_dir(step3_checkpoint, tmp_path_factory):
    """A folder with the trained Step 3 checkpoint and an untrained Model_1 (to choose between them)."""
    folder = tmp_path_factory.mktemp("served")
    for path in paths(step3_checkpoint):
        shutil.copy(path, folder / path.name)
    torch.manual_seed(0)
    save_checkpoint(Model_1().eval(), folder / "untrained", model_name="Model_1", metrics={"test_acc": 10.0},
                    title="Model_1, untrained")
    return folder


@pytest.fixture(scope="module")
def client(models_dir):
    with TestClient(create_app(models_dir)) as client:
        yield client


def test_the_page_has_a_canvas_an_upload_and_a_model_choice(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for part in ('<canvas id="canvas"', 'id="clear"', 'type="file"', '<select id="model"', 'id="error"'):
        assert part in page.text


def test_models_are_listed_best_first_with_the_step3_model_as_default(client, step3_checkpoint):
    listing = client.get("/api/models").json()
    assert listing["default"] == "step3"
    assert [m["id"] for m in listing["models"]] == ["step3", "untrained"]
    step3 = listing["models"][0]
    assert step3["model"] == "Model_3" and step3["parameters"] == count_parameters(Model_3()) and step3["default"]
    assert step3["test_acc"] > 97 and not listing["models"][1]["default"]
    assert step3["label_smoothing"] == 0.0, "step3.yaml trains without it: the page says so where a model has it"


def test_a_test_digit_is_read_with_its_confidence_top_3_and_the_image_the_model_saw(client, mnist, make_picture):
    for index in range(8):
        data = make_picture(mnist.test.images[index])
        answer = client.post("/api/predict", content=data, headers={"content-type": "image/png"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["digit"] == int(mnist.test.labels[index]) and body["model"] == "step3"
        assert body["top"][0] == {"digit": body["digit"], "probability": body["confidence"]}
        chances = [t["probability"] for t in body["top"]]
        assert len(chances) == 3 and chances == sorted(chances, reverse=True) and sum(chances) <= 1 + 1e-6
        assert body["inverted"] and body["source_size"] == [300, 220]
        header, encoded = body["image"].split(",", 1)
        assert header == "data:image/png;base64"
        seen = torch.from_numpy(np.array(Image.open(io.BytesIO(base64.b64decode(encoded)))))
        assert torch.equal(seen, preprocess(data).pixels)


def test_the_model_can_be_chosen(client, mnist, make_picture):
    data = make_picture(mnist.test.images[0])
    trained = client.post("/api/predict?model=step3", content=data).json()
    untrained = client.post("/api/predict?model=untrained", content=data).json()
    assert trained["model"] == "step3" and untrained["model"] == "untrained"
    assert trained["confidence"] > 0.9 and untrained["top"] != trained["top"]
    unknown = client.post("/api/predict?model=nope", content=data)
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "No model 'nope'. Choose one of: step3, untrained."
    traversal = client.post("/api/predict?model=../step3", content=data)
    assert traversal.status_code == 404
    # Paths and methods the API does not have are refused in the same shape as every other error.
    assert client.get("/api/nothing").json() == {"error": "Not Found: GET /api/nothing"}
    wrong_method = client.get("/api/predict")
    assert wrong_method.status_code == 405 and wrong_method.json() == {"error": "Method Not Allowed: GET /api/predict"}
    asked = client.head("/")  # as an uptime check asks: the page's headers, no body
    assert asked.status_code == 200 and asked.headers["content-type"].startswith("text/html") and asked.content == b""
    asked = client.head("/api/models")  # the API's health check: it answered 405
    assert asked.status_code == 200 and asked.headers["content-type"] == "application/json" and asked.content == b""


def too_many_bytes():
    """A body over the limit, sent in pieces without a Content-Length: the server must count as it reads."""
    for _ in range(6):
        yield b"\0" * (1024 * 1024)


@pytest.mark.parametrize("body, status, words", [
    (b"", 400, "empty"),
    (b"hello, I am a text file", 415, "not an image"),
    (blank(255), 422, "No digit found"),
    (blank(0, size=(2, 2)), 422, "too small to hold a digit"),
    (b"\0" * (MAX_BYTES + 1), 413, "larger than the 5 MB"),
    (too_many_bytes, 413, "larger than the 5 MB"),
    (png_header_only(20_000, 20_000), 413, "pixels, more than the 40 million allowed"),
], ids=["empty", "text", "blank-canvas", "2x2", "over-5-MB", "over-5-MB-streamed", "pixel-bomb"])
def test_bad_input_is_a_4xx_with_a_message_and_the_server_keeps_serving(client, mnist, make_picture, body, status,
                                                                         words):
    answer = client.post("/api/predict", content=body() if callable(body) else body)
    assert answer.status_code == status
    assert words in answer.json()["error"]
    assert client.post("/api/predict", content=make_picture(mnist.test.images[0])).json()["digit"] == 7


def test_uploads_are_never_written_to_disk(client, mnist, make_picture, monkeypatch):
    def no_disk(*args, **kwargs):
        raise AssertionError("an upload was about to be written to a temporary file")

    for name in ("SpooledTemporaryFile", "NamedTemporaryFile", "TemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
    monkeypatch.setattr(formparsers, "SpooledTemporaryFile", no_disk)  # imported by name where uploads spool
    big = make_picture(mnist.test.images[0], size=700, canvas=(1200, 900), at=(300, 100), mode="RGB", fmt="BMP")
    assert 1024 * 1024 < len(big) < MAX_BYTES  # larger than what a multipart parser keeps in memory
    assert client.post("/api/predict", content=big).json()["digit"] == 7


def test_a_checkpoint_that_breaks_while_serving_is_a_clear_error(models_dir, mnist, make_picture, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(models_dir, folder)
    with TestClient(create_app(folder)) as client:
        data = make_picture(mnist.test.images[0])
        assert client.get("/api/models").json()["default"] == "step3"
        weights = folder / "untrained.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])  # rewritten in place: the folder's own time may not change
        broken = client.post("/api/predict?model=untrained", content=data)
        assert broken.status_code == 404 and broken.json()["error"].startswith(
            "Model 'untrained' cannot be loaded: untrained.safetensors is 100 bytes"), "seen at the next request"
        assert [s["id"] for s in client.get("/api/models").json()["skipped"]] == ["untrained"]
        assert client.post("/api/predict", content=data).json()["digit"] == 7


def test_a_checkpoint_that_cannot_be_loaded_is_named_with_what_is_wrong(models_dir, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(models_dir, folder)
    (folder / "notes.json").write_text("{")  # before the app lists the folder: left out from the start
    with TestClient(create_app(folder)) as client:
        listed = client.get("/api/models").json()
        assert listed["default"] == "step3" and "notes" not in [m["id"] for m in listed["models"]]
        (skipped,) = listed["skipped"]
        assert skipped["id"] == "notes" and skipped["problem"].startswith("notes.json is not valid JSON")
        answer = client.post("/api/predict?model=notes", content=blank(255))
        assert answer.status_code == 404 and answer.json()["error"].startswith(
            "Model 'notes' cannot be loaded: notes.json is not valid JSON"), "named in the folder it serves"


def test_a_checkpoint_whose_weights_are_anothers_is_left_out_from_the_start(models_dir, tmp_path, caplog):
    folder = tmp_path / "models"
    shutil.copytree(models_dir, folder)
    torch.manual_seed(1)
    save_checkpoint(Model_3().eval(), folder / "swap", model_name="Model_3", metrics={"test_acc": 99.9})
    (folder / "swap.safetensors").write_bytes((folder / "step3.safetensors").read_bytes())  # same size and layout
    with TestClient(create_app(folder)) as client:
        listed = client.get("/api/models").json()
        assert listed["default"] == "step3", "the most accurate Model_3 would be the default: it is left out"
        (skipped,) = listed["skipped"]
        assert skipped["id"] == "swap" and "does not match the SHA-256 in its metadata" in skipped["problem"]
    (folder / "step3.safetensors").unlink(), (folder / "step3.json").unlink()
    assert main(["--models", str(folder), "--check"]) == 1, "`make app` trains a Step 3 model: none it can serve"
    assert caplog.text.count("swap.safetensors does not match") == 2, "once per listing of the folder"


def test_a_new_checkpoint_appears_without_a_restart(models_dir, tmp_path, mnist, make_picture):
    folder = tmp_path / "models"
    folder.mkdir()
    with TestClient(create_app(folder)) as client:
        assert client.get("/api/models").json() == {"default": None, "models": [], "skipped": []}
        answer = client.post("/api/predict", content=blank(255))
        assert answer.status_code == 404 and "No model saved" in answer.json()["error"]
        for path in paths(models_dir / "step3"):
            shutil.copy(path, folder / path.name)
        assert client.get("/api/models").json()["default"] == "step3"
        seven = make_picture(mnist.test.images[0])
        trained = client.post("/api/predict?model=step3", content=seven).json()
        assert trained["digit"] == 7 and trained["confidence"] > 0.5
        # Replaced under the same name (`make train REPLACE=1` while the page runs): the new weights answer.
        torch.manual_seed(0)
        save_checkpoint(Model_1().eval(), folder / "step3", model_name="Model_1", metrics={"test_acc": 10.0},
                        title="Model_1, untrained")
        listed = client.get("/api/models").json()["models"]
        assert [m["model"] for m in listed if m["id"] == "step3"] == ["Model_1"]
        untrained = client.post("/api/predict?model=step3", content=seven).json()
        assert untrained["confidence"] < 0.5, untrained


def test_a_picture_sent_as_a_form_is_told_how_to_send_it(client, mnist, make_picture):
    answer = client.post("/api/predict", files={"file": ("seven.png", make_picture(mnist.test.images[0]), "image/png")})
    assert answer.status_code == 415 and "not as a form" in answer.json()["error"]
    assert "--data-binary" in answer.json()["error"]
    # `curl -d @seven.png`: sent as form text, without its line breaks, so no longer a picture
    stripped = make_picture(mnist.test.images[0]).replace(b"\n", b"").replace(b"\r", b"")
    answer = client.post("/api/predict", content=stripped,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 415 and "curl --data-binary @digit.png" in answer.json()["error"]


def test_a_sender_that_leaves_part_way_through_its_upload_is_let_go_without_an_error(models_dir):
    app, sent = create_app(models_dir), []
    arriving = [{"type": "http.request", "body": b"x" * 100, "more_body": True}, {"type": "http.disconnect"}]

    async def receive():
        return arriving.pop(0)

    async def send(message):
        sent.append(message)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/predict", "raw_path": b"/api/predict", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"test"), (b"content-length", b"100000")], "server": ("test", 80),
             "client": ("test", 1)}
    asyncio.run(app(scope, receive, send))  # raised ClientDisconnect, logged with its traceback, after a 500
    assert sent[0]["status"] == 400 and not arriving


def test_a_checkpoint_whose_metadata_changes_is_loaded_again_and_one_no_model_takes_is_left_out(models_dir, tmp_path,
                                                                                               mnist, make_picture):
    folder = tmp_path / "models"
    shutil.copytree(models_dir, folder)
    seven = make_picture(mnist.test.images[0])
    def answer(model):
        reply = client.post(f"/api/predict?model={model}", content=seven)
        return reply.status_code, {key: reply.json().get(key) for key in ("digit", "confidence", "error")}
    with TestClient(create_app(folder)) as client:
        before = answer("step3")
        assert before[1]["digit"] == 7
        meta = json.loads((folder / "step3.json").read_text())  # used once, then a normalisation it never saw
        (folder / "step3.json").write_text(json.dumps({**meta, "normalization": {"mean": 50.0, "std": 0.01}}))
        assert answer("step3") != before, "the model loaded before its metadata changed answered as before"
        meta = json.loads((folder / "untrained.json").read_text())
        (folder / "untrained.json").write_text(json.dumps({**meta, "model": {"name": "Nope", "args": {}}}))
        listed = client.get("/api/models").json()
        assert [(s["id"], "unknown 'Nope'" in s["problem"]) for s in listed["skipped"]] == [("untrained", True)]
        status, said = answer("untrained")
        assert status == 404 and said["error"].startswith("Model 'untrained' cannot be loaded: untrained.safetensors:")


@pytest.mark.parametrize("text", ["abc", "0", "99999", "-1", "", "²"])  # "²": a digit to str.isdigit, not to int
def test_a_port_that_is_not_one_is_refused_by_name(text):
    with pytest.raises(argparse.ArgumentTypeError, match="is not a port: give a number from 1 to 65535"):
        port_number(text)
    assert port_number("8000") == 8000


def test_every_command_line_refuses_a_bad_option_in_one_line(capsys):
    # argparse's own error prints the usage first; each of the project's commands says the problem and the fix.
    from mnist_utils import bench, run

    for command, arguments in ((main, ["--port", "99999"]), (run.main, ["--at-once", "x"]), (bench.main, ["--nope"])):
        with pytest.raises(SystemExit) as stopped:
            command(arguments)
        err = capsys.readouterr().err
        assert stopped.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert "--help`." in err and "usage:" not in err


def test_a_port_in_use_is_an_error_before_the_page_says_it_serves(models_dir, capsys):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert serving_problem("127.0.0.1", port) is not None
        assert main(["--models", str(models_dir), "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert "Serving" not in captured.out and f"cannot serve on 127.0.0.1:{port}" in captured.err
    assert "choose another port" in captured.err
    assert serving_problem("127.0.0.1", port) is None, "free again once its holder closed"


def test_an_address_this_machine_does_not_have_is_the_hosts_fault_not_the_ports(models_dir, capsys):
    assert main(["--models", str(models_dir), "--host", "10.255.255.1", "--port", "8123"]) == 2  # no such interface
    error = capsys.readouterr().err
    assert error.startswith("error: cannot serve on 10.255.255.1:8123 (") and ": check the host (HOST=127.0.0.1" in error
    assert "port" not in error.split("): ", 1)[1], error


def test_check_says_whether_a_step3_model_is_saved_and_serving_needs_a_model(models_dir, tmp_path, capsys,
                                                                             monkeypatch):
    """`make app` trains a Step 3 model first when `--check` says there is none."""
    only_model_1, empty = tmp_path / "model_1", tmp_path / "empty"
    only_model_1.mkdir(), empty.mkdir()
    for path in paths(models_dir / "untrained"):
        shutil.copy(path, only_model_1 / path.name)
    assert main(["--models", str(models_dir), "--check"]) == 0
    assert main(["--models", str(only_model_1), "--check"]) == 1
    assert main(["--models", str(empty), "--check"]) == 1 and main(["--models", str(tmp_path / "none"), "--check"]) == 1
    monkeypatch.setenv("MNIST_PROFILE", "full")  # the full profile's commands; the smoke profile's say so
    assert main(["--models", str(empty)]) == 2
    assert capsys.readouterr().err == (f"error: no saved model in {empty}: train one with `make train "
                                       "CONFIG=configs/step3.yaml` and copy its .safetensors and .json there, or leave "
                                       "--models out.\n"), "a folder of one's own: `make app` serves another"
    monkeypatch.setenv("MNIST_REPORTS_DIR", str(empty))
    assert main([]) == 2
    assert capsys.readouterr().err.startswith(f"error: no saved model in {empty / 'models'}: `make app` trains one")
    monkeypatch.setenv("MNIST_PROFILE", "smoke")
    assert main([]) == 2
    assert capsys.readouterr().err.startswith(f"error: no saved model in {empty / 'smoke' / 'models'}: `make app "
                                              "PROFILE=smoke` trains one, or `make train CONFIG=configs/step3.yaml "
                                              "PROFILE=smoke`")


def test_a_bad_port_in_the_environment_is_named_as_the_environments(monkeypatch, capsys):
    monkeypatch.setenv("PORT", "abc")
    with pytest.raises(SystemExit) as stopped:
        main([])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.startswith("error: the environment's PORT: 'abc' is not a port") and \
        "(or unset PORT)" in err
    assert main(["--port", "8001", "--check", "--models", "/nonexistent"]) == 1, "--port given: $PORT is not read"


def test_a_models_folder_that_is_a_file_is_one_usage_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a folder")
    with pytest.raises(SystemExit) as ended:  # every request would fail on it: a 500 without a message
        main(["--models", str(tmp_path / "notes.txt"), "--check"])
    error = capsys.readouterr().err.splitlines()[-1]
    assert ended.value.code == 2 and error == (f"error: {tmp_path / 'notes.txt'} is a file, not a folder of "
                                               "checkpoints: give --models the folder that holds them. See `python "
                                               "-m mnist_utils.app --help`.")

