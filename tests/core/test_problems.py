"""DataError groups problems of one kind, so a file broken on every line gives a short, readable message."""

from rerankforge.core import problems as P
from rerankforge.core.problems import DataError, Problem


def test_a_thousand_problems_of_one_kind_give_a_short_message():
    same = [Problem('expected {"_id": ..., "answers": [...]}, got keys [\'_id\', \'long_answer\'].', "answers.jsonl", i)
            for i in range(1, 1001)]
    other = Problem("malformed JSON (Expecting value at column 1).", "corpus.jsonl", 7)
    exc = DataError(same + [other])
    message = str(exc)
    lines = message.splitlines()
    assert len(lines) < 15, message
    assert "1,001 problem(s)" in lines[0] and "1,000 times" in message
    assert message.count("got keys") == 1  # the kind once, not once per record
    for line in range(1, P.MAX_LISTED + 1):
        assert f"answers.jsonl:{line}\n" in message + "\n"
    assert f"answers.jsonl:{P.MAX_LISTED + 1}\n" not in message + "\n"
    assert f"... and {1000 - P.MAX_LISTED} more like this" in message
    assert "corpus.jsonl:7: malformed JSON" in message
    assert len(exc.problems) == 1001  # every problem is kept


def test_single_problems_keep_the_file_line_message_form():
    message = str(DataError([Problem("a.", "f.tsv", 2), Problem("b.", "g.tsv")]))
    assert message.startswith("Found 2 problem(s)")
    assert "  - f.tsv:2: a." in message and "  - g.tsv: b." in message
