"""answers.jsonl of another shape: one clear problem naming the fix, answers_field to read it, answers=none to skip."""

import json

import pytest
from conftest import make_beir, write_jsonl

from rerankforge.core.problems import DataError
from rerankforge.eval.config import EvalDataConfig
from rerankforge.eval.data import load_eval_data


@pytest.fixture
def pubmedqa_like(tmp_path):
    beir = make_beir(tmp_path / "beir")
    write_jsonl(beir / "answers.jsonl", [{"_id": f"t{i}", "final_decision": "yes", "long_answer": f"cats eat {i}"}
                                         for i in range(2)] +
                [{"_id": f"x{i}", "final_decision": "no", "long_answer": "dogs"} for i in range(998)])
    return beir


def test_records_without_the_answers_field_give_one_problem_naming_the_fix(pubmedqa_like):
    with pytest.raises(DataError) as err:
        load_eval_data(EvalDataConfig(path=str(pubmedqa_like)))
    assert len(err.value.problems) == 1  # not one per record
    message = str(err.value)
    assert len(message.splitlines()) == 2
    assert "answers.jsonl" in message and "1,000 of 1,000" in message
    assert "['_id', 'final_decision', 'long_answer']" in message
    assert '{"_id": "<query id>", "answers": [' in message
    assert "data.answers_field=long_answer" in message and "data.answers=none" in message


def test_answers_field_reads_a_string_as_one_answer(pubmedqa_like):
    data = load_eval_data(EvalDataConfig(path=str(pubmedqa_like), answers_field="long_answer"))
    assert data.answers == {"t0": ["cats eat 0"], "t1": ["cats eat 1"]}
    assert "answers" in data.sources


def test_answers_none_disables_an_existing_answers_file(pubmedqa_like):
    data = load_eval_data(EvalDataConfig(path=str(pubmedqa_like), answers="none"))
    assert data.answers == {} and "answers" not in data.sources
    assert len(data.qrels) == 2


def test_a_wrong_value_type_is_one_kind_of_problem(tmp_path):
    beir = make_beir(tmp_path / "beir")
    (beir / "answers.jsonl").write_text("".join(json.dumps({"_id": f"t{i}", "answers": 3}) + "\n" for i in range(50)))
    with pytest.raises(DataError) as err:
        load_eval_data(EvalDataConfig(path=str(beir)))
    assert len(err.value.problems) == 50
    assert '"answers" must be a string or a list of strings, got int. (50 times)' in str(err.value)
    assert len(str(err.value).splitlines()) < 10
