"""The text demo's data: questions over short synthetic paragraphs, answered by spans of the text.

A paragraph states a few facts about two or three people ("Mira lives in Oslo. Mira works as a
baker. Tom lives in Cape Town."); the question asks for one fact ("Where does Tom live?") and the
answer is the words of the paragraph that state it ("Cape Town"), so exact match and token F1
apply as in SQuAD. Other people's facts of the same kind are the distractors. Everything is
generated from a seeded random generator (no files, no network), and a word-level tokenizer is
built from the generator's own word lists, so every build and every app start sees the same data.

Each instance has subgroup attributes: the question type, the answer's length in words and the
number of people in the paragraph.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

import torch

NAMES = ("Mira", "Tom", "Ana", "Leo", "Sara", "Omar", "Nina", "Ivan", "Lena", "Paul", "Yuki", "Ravi",
         "Elsa", "Hugo", "Zoe", "Karl", "Maya", "Finn", "Ines", "Theo", "Aiko", "Marc", "Rosa", "Emil")
CITIES = ("Oslo", "Paris", "Lima", "Rome", "Cairo", "Tokyo", "Berlin", "Madrid", "Dublin", "Vienna", "Quito",
          "Seoul", "Lagos", "Delhi", "Prague", "Lisbon", "Cape Town", "New York", "Hong Kong", "Buenos Aires",
          "Tel Aviv", "San Diego", "Los Angeles", "Rio de Janeiro", "Salt Lake City")
JOBS = ("baker", "nurse", "pilot", "farmer", "painter", "lawyer", "dentist", "teacher", "plumber", "chef",
        "writer", "tailor", "bus driver", "taxi driver", "piano teacher", "web designer", "police officer",
        "fire fighter", "night shift nurse")
PETS = ("cat", "dog", "parrot", "hamster", "rabbit", "pony", "turtle", "goldfish", "guinea pig", "bearded dragon",
        "golden retriever", "tiny black kitten")
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "black", "white", "grey", "pink", "dark blue",
           "light green", "bright sunny yellow")

# question type -> (fact template, question template, values)
RELATIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "home": ("{name} lives in {value}.", "Where does {name} live?", CITIES),
    "birthplace": ("{name} was born in {value}.", "Where was {name} born?", CITIES),
    "job": ("{name} works as a {value}.", "What does {name} work as?", JOBS),
    "pet": ("{name} has a {value}.", "What pet does {name} have?", PETS),
    "colour": ("{name} likes the colour {value}.", "Which colour does {name} like?", COLOURS),
}
QUESTION_TYPES = tuple(RELATIONS)
ANSWER_LENGTHS = ("1 word", "2 words", "3 words")
PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
TRAIN_SIZE = 24000
TEST_SIZE = 500
_TOKEN = re.compile(r"[A-Za-z]+|[^\sA-Za-z]")


@dataclass(frozen=True)
class QAExample:
    """One instance: the prompt shown to the model, its reference answer and its attributes."""

    prompt: str
    answer: str
    question_type: str
    people: int

    @property
    def answer_length(self) -> str:
        n = len(self.answer.split())
        return ANSWER_LENGTHS[min(n, len(ANSWER_LENGTHS)) - 1]


class WordTokenizer:
    """Word-level tokenizer over a closed vocabulary: words and punctuation marks are tokens.

    Id 0 is padding, 1 end of answer, 2 unknown words. Decoding joins words with spaces and
    attaches punctuation to the word before it."""

    def __init__(self, words: list[str]) -> None:
        self.vocab: list[str] = [PAD, EOS, UNK] + sorted(set(words) - {PAD, EOS, UNK})
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.eos_id, self.unk_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.vocab)

    @staticmethod
    def split(text: str) -> list[str]:
        return _TOKEN.findall(text)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(w, self.unk_id) for w in self.split(text)]

    def decode(self, ids: list[int]) -> str:
        """Text of `ids` up to the first end-of-answer token. Other special tokens are shown
        ("<pad>"), as a model that generates them should be seen doing so."""
        words: list[str] = []
        for i in ids:
            if i == self.eos_id:
                break
            words.append(self.vocab[i] if 0 <= i < len(self.vocab) else UNK)
        text = " ".join(words)
        return re.sub(r" ([^\sA-Za-z<])", r"\1", text)


def _all_words() -> list[str]:
    words: set[str] = set()
    for fact, question, values in RELATIONS.values():
        for text in (fact, question, *values):
            words.update(WordTokenizer.split(text.replace("{name}", "").replace("{value}", "")))
    for text in (*NAMES, "Question: Answer:"):
        words.update(WordTokenizer.split(text))
    return sorted(words)


@lru_cache(maxsize=1)
def tokenizer() -> WordTokenizer:
    return WordTokenizer(_all_words())


def make_example(rng: random.Random) -> QAExample:
    """A paragraph of 3-5 facts about 2-3 people, each fact of a different kind, and one question.

    Every kind of fact appears at most once, so the question's kind picks the fact; the two
    kinds whose answers are cities (home, birthplace) are the near-misses."""
    people = rng.choice((2, 3))
    names = rng.sample(NAMES, people)
    kinds = rng.sample(QUESTION_TYPES, rng.randint(max(3, people), 5))
    owners = names + [rng.choice(names) for _ in range(len(kinds) - people)]
    rng.shuffle(owners)
    facts = [(owner, kind, rng.choice(RELATIONS[kind][2])) for owner, kind in zip(owners, kinds)]
    name, qtype, value = facts[rng.randrange(len(facts))]
    paragraph = " ".join(RELATIONS[kind][0].format(name=owner, value=v) for owner, kind, v in facts)
    question = RELATIONS[qtype][1].format(name=name)
    return QAExample(f"{paragraph} Question: {question} Answer:", value, qtype, people)


@lru_cache(maxsize=4)
def load_examples(split: str, seed: int = 0) -> tuple[QAExample, ...]:
    """The `train` or `test` examples; the two splits use different seeds of the generator."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    size = TRAIN_SIZE if split == "train" else TEST_SIZE
    rng = random.Random(f"text-demo/{split}/{seed}")
    return tuple(make_example(rng) for _ in range(size))


def training_tensors(examples: tuple[QAExample, ...] | list[QAExample]) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) long tensors [N, T] for next-token training on the answers only.

    Row i holds prompt + answer + end token shifted by one: targets are -100 (ignored) on the
    prompt and on right padding, so the loss is the answer's negative log-likelihood."""
    tok = tokenizer()
    rows = []
    for ex in examples:
        prompt, answer = tok.encode(ex.prompt), tok.encode(ex.answer) + [tok.eos_id]
        rows.append((prompt + answer, len(prompt)))
    width = max(len(seq) for seq, _ in rows) - 1
    x = torch.full((len(rows), width), tok.pad_id, dtype=torch.long)
    y = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (seq, n_prompt) in enumerate(rows):
        s = torch.tensor(seq)
        x[i, :len(seq) - 1] = s[:-1]
        y[i, n_prompt - 1:len(seq) - 1] = s[n_prompt:]
    return x, y


def attributes(examples: tuple[QAExample, ...] | list[QAExample]) -> dict[str, list[str]]:
    return {
        "question type": [ex.question_type for ex in examples],
        "answer length": [ex.answer_length for ex in examples],
        "people": [f"{ex.people} people" for ex in examples],
    }
