"""Config descriptions: every key of every command's config says what it does, read from the dataclasses."""

from dataclasses import dataclass, field

import pytest
import yaml

from rerankforge.core.config import to_dict
from rerankforge.core.describe import COMMAND_SCHEMAS, describe, explained_yaml, reference_markdown
from rerankforge.core.modules import attribute


@pytest.mark.parametrize("command", list(COMMAND_SCHEMAS))
def test_every_key_of_every_command_has_a_description(command):
    undescribed = [doc.key for doc in describe(attribute(COMMAND_SCHEMAS[command])) if not doc.description.strip()]
    assert undescribed == [], f"{command}: add a comment on these fields in their dataclass: {undescribed}"


@dataclass
class Inner:
    """A nested block."""

    depth: int = 3  # how deep


@dataclass
class Outer:
    # the first line above
    # and the second
    name: str = "x"
    size: int = 2  # trailing wins
    inner: Inner = field(default_factory=Inner)

    def method(self) -> None:
        name: str = "not a field"  # a local annotation is not a field comment  # noqa: F841


def test_a_fields_description_is_its_trailing_comment_or_the_lines_above():
    docs = {d.key: d for d in describe(Outer)}
    assert docs["name"].description == "the first line above and the second"
    assert docs["size"].description == "trailing wins" and docs["size"].default == "2"
    assert docs["inner"].description == "A nested block." and docs["inner.depth"].description == "how deep"


@pytest.mark.parametrize("command", ["train", "mine", "eval", "quickstart"])
def test_explained_yaml_is_the_config_itself_with_comments(command):
    config = attribute(COMMAND_SCHEMAS[command])()
    text = explained_yaml(config)
    assert yaml.safe_load(text) == to_dict(config)
    assert sum(line.lstrip().startswith("# ") for line in text.splitlines()) >= len(to_dict(config))


def test_the_reference_has_a_table_per_command_with_every_key():
    page = reference_markdown()
    for command, name in COMMAND_SCHEMAS.items():
        assert f"## `rerankforge {command}`" in page
    assert "| `optim.lr` | `float` | `5.0e-05` | the peak learning rate |" in page
    assert "| `first_stage.encoder.name_or_path` |" in page and "| `mining.num_negatives` |" in page
