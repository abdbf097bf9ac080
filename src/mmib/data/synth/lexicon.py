"""Words of the synthetic benchmark: invented names, type hints, neutral contexts and tweet noise.

Names are invented from syllables so that no pretrained encoder has seen them with a type: what the
type is must come from the post's context words or from its image.
"""

from __future__ import annotations

import random

ENTITY_TYPES = ("PER", "LOC", "ORG", "MISC")

# NER type -> the scene motif that shows it (people, places, organisations' signs, award objects).
TYPE_CUES = {"PER": "person", "LOC": "landscape", "ORG": "building", "MISC": "trophy"}

# Contexts that decide the type of {E} from the text alone.
TYPE_HINTS: dict[str, list[str]] = {
    "PER": [
        "happy birthday to {E} , she deserves the best",
        "actor {E} said in an interview that he is retiring",
        "{E} scored twice and thanked his mum",
        "singer {E} and her new haircut",
        "congrats to {E} on becoming a dad",
    ],
    "LOC": [
        "flying to {E} tomorrow , any tips for the city ?",
        "heavy snow in {E} tonight",
        "walking the streets of {E} with friends",
        "moving to {E} next month , love this town",
        "the road from {E} to the coast is closed",
    ],
    "ORG": [
        "shares of {E} fell after the company report",
        "{E} announced a new CEO today",
        "{E} is hiring engineers at its headquarters",
        "just got a job offer from {E} inc",
        "the union at {E} corp is on strike",
    ],
    "MISC": [
        "watching the {E} cup final tonight",
        "the {E} award ceremony starts at eight",
        "who won the {E} trophy this year ?",
        "tickets for the {E} championship sold out",
        "{E} prize goes to a rookie again",
    ],
}

# Contexts that say nothing about the type of {E}.
NEUTRAL: list[str] = [
    "{E} is all over my feed today",
    "can not stop thinking about {E}",
    "look at this : {E}",
    "so much love for {E} right now",
    "throwback to {E}",
    "{E} again !",
    "everyone is talking about {E}",
    "this is {E} , no words",
]

# A second, always text-decided entity: names from a pool whose type never changes.
SECONDARY = ["with {S}", "via {S}", "cc {S}", "thanks {S}"]

# Relation extraction: label, head type, tail type, scene cues, hint templates ({H}, {T}).
RELATIONS: dict[str, tuple[str, str, list[str], list[str]]] = {
    "/per/per/couple": (
        "PER",
        "PER",
        ["person", "person", "heart"],
        ["{H} and {T} got married last weekend", "{H} kissing her husband {T}", "{H} and {T} are dating"],
    ),
    "/per/per/peer": (
        "PER",
        "PER",
        ["person", "person", "ball"],
        [
            "{H} and teammate {T} won the match",
            "{H} passes to {T} in training",
            "{H} and {T} play for the same club",
        ],
    ),
    "/per/loc/place_of_residence": (
        "PER",
        "LOC",
        ["person", "house"],
        ["{H} lives in {T} with his family", "{H} bought a house in {T}", "{H} at home in {T}"],
    ),
    "/per/org/member_of": (
        "PER",
        "ORG",
        ["person", "building"],
        ["{H} joined {T} as a manager", "{H} works for {T}", "{H} signed a contract with {T}"],
    ),
    "/org/loc/locate_at": (
        "ORG",
        "LOC",
        ["building", "landscape"],
        ["{H} opens its office in {T}", "{H} is based in {T}", "the {H} headquarters in {T}"],
    ),
    "/per/misc/awarded": (
        "PER",
        "MISC",
        ["person", "trophy"],
        ["{H} wins the {T}", "{H} was awarded the {T}", "{H} lifts the {T} trophy"],
    ),
}
NONE_HINTS = ["{H} has nothing to do with {T}", "{H} is not {T}", "unlike {H} , {T} stayed home"]
PAIR_NEUTRAL = ["{H} and {T} today", "{H} {T} !!", "{H} with {T} , look", "{H} / {T} #tbt", "news : {H} {T}"]

USERS = ["@kat_ii", "@newsfeed", "@joe99", "@dailypics", "@mar_ta", "@sportsdesk"]
HASHTAGS = ["#news", "#tbt", "#love", "#weekend", "#photo", "#live"]
EMOJI = ["😂", "🔥", "❤", "👏"]

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "kr", "st", "tr", "sh"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ee"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "x", "ll"]


def invent_word(rng: random.Random) -> str:
    syllables = rng.randint(2, 3)
    word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(_CODAS)
    return word.capitalize()


def invent_names(rng: random.Random, count: int, taken: set[str]) -> list[list[str]]:
    """``count`` distinct names of one or two invented words, avoiding ``taken`` (updated)."""
    names: list[list[str]] = []
    while len(names) < count:
        name = [invent_word(rng) for _ in range(1 if rng.random() < 0.6 else 2)]
        key = " ".join(name)
        if key not in taken:
            taken.add(key)
            names.append(name)
    return names


def decorate(tokens: list[str], rng: random.Random) -> tuple[list[str], int]:
    """Add tweet noise (RT @user :, hashtags, URLs, emoji); returns tokens and the prefix length."""
    prefix = ["RT", rng.choice(USERS), ":"] if rng.random() < 0.3 else []
    suffix: list[str] = []
    if rng.random() < 0.3:
        suffix.append(rng.choice(HASHTAGS))
    if rng.random() < 0.2:
        suffix.append(rng.choice(EMOJI))
    if rng.random() < 0.3:
        suffix.append(
            "http://t.co/" + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz0123456789") for _ in range(8))
        )
    return prefix + tokens + suffix, len(prefix)
