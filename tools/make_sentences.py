"""Regenerate the project's sentence corpus: `python tools/make_sentences.py` -> data/sentences/.

Sentences are written for lutnb (CC0): templates x vocabulary lists over a dozen topics and several
styles (statements, questions, instructions, short fragments, long compound sentences), plus paraphrase
pairs (the same content said two ways). Deterministic: a fixed seed picks the combinations and the
train / held-out split, so the committed files can be rebuilt byte for byte.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 20250118
N_TRAIN, N_HELDOUT, N_PAIRS = 3000, 600, 300

PEOPLE = ["my neighbour", "the teacher", "a young engineer", "our doctor", "the old fisherman", "my sister",
          "the new manager", "a tired student", "the chef", "the pilot", "a local farmer", "the librarian",
          "my grandfather", "the nurse", "a famous author", "the taxi driver", "the mayor", "a small child",
          "the painter", "the coach"]
NAMES = ["Alice", "Bob", "Carmen", "Dmitri", "Esther", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
         "Liam", "Mei", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq"]
PLACES = ["the market", "the station", "the library", "the beach", "the mountains", "the old town",
          "the hospital", "the airport", "the museum", "a quiet village", "the harbour", "the stadium",
          "the city centre", "the forest", "the university", "the bakery", "the river bank", "the office"]
TIMES = ["yesterday", "last week", "this morning", "every Sunday", "in the evening", "before dawn",
         "after lunch", "during the winter", "on Friday night", "twice a month", "in 1998", "right now"]
TOPICS = {
    "science": (["the experiment", "the telescope", "a new vaccine", "the climate model", "the neutron star",
                 "the bacteria", "the chemical reaction", "the fossil", "the protein", "the satellite"],
                ["produced surprising results", "was measured with great care", "changed our understanding",
                 "failed after three attempts", "confirmed the old theory", "needs more funding",
                 "was published in a journal", "surprised the researchers"]),
    "sports": (["the home team", "the goalkeeper", "the marathon runner", "the tennis final", "the referee",
                "the young striker", "the swimming relay", "the cycling race", "the boxer", "the coach"],
               ["won by a narrow margin", "lost in extra time", "broke the national record",
                "was cancelled because of rain", "drew a huge crowd", "trained harder than ever",
                "celebrated with the fans", "was injured in the second half"]),
    "food": (["the soup", "a loaf of bread", "the spicy curry", "the chocolate cake", "fresh strawberries",
              "the grilled fish", "a cup of coffee", "the vegetable stew", "the pasta", "green tea"],
             ["tasted better than expected", "was far too salty", "smelled wonderful", "was sold out by noon",
              "needs another ten minutes", "was cooked with fresh herbs", "went cold on the table",
              "is cheap and filling"]),
    "technology": (["the new phone", "the laptop", "the software update", "the search engine", "the robot",
                    "the database", "the electric car", "the password manager", "the printer", "the network"],
                   ["crashed during the demo", "runs much faster now", "drains the battery quickly",
                    "was released last spring", "stopped working again", "costs too much for most people",
                    "is easy to set up", "collects too much personal data"]),
    "weather": (["the storm", "the morning fog", "a heavy snowfall", "the heat wave", "the strong wind",
                 "the spring rain", "the thunder", "the frost", "the hurricane", "a clear sky"],
                ["closed the roads", "arrived earlier than forecast", "lasted for three days",
                 "damaged several roofs", "made everyone stay inside", "brought relief to the farmers",
                 "surprised the tourists", "cleared by the afternoon"]),
    "finance": (["the stock market", "the central bank", "the small business", "the interest rate",
                 "the new tax", "my savings account", "the housing market", "the startup", "inflation",
                 "the budget"],
                ["fell sharply on Monday", "rose for the third month", "worried the investors",
                 "was debated in parliament", "hit a record high", "stayed roughly the same",
                 "hurt families with low incomes", "recovered slowly"]),
    "health": (["the patient", "a good night's sleep", "regular exercise", "the flu", "the new clinic",
                "the headache", "the medicine", "a balanced diet", "the surgery", "stress"],
               ["improved within a week", "can prevent many problems", "spread through the school",
                "opened its doors to everyone", "went away after some rest", "has few side effects",
                "lasted longer than planned", "affects millions of people"]),
    "history": (["the ancient empire", "the old castle", "the revolution", "the treaty", "the medieval town",
                 "the first printing press", "the explorers", "the war", "the royal family", "the pyramids"],
                ["changed the course of history", "was built over many decades", "ended in 1648",
                 "is still studied in schools", "collapsed after a long decline", "attracted many visitors",
                 "left few written records", "was rediscovered by archaeologists"]),
    "music": (["the orchestra", "the jazz band", "her new album", "the old piano", "the concert",
               "the folk song", "the drummer", "the opera", "the choir", "the guitar solo"],
              ["sounded beautiful", "was played too loudly", "sold a million copies", "moved the audience to tears",
               "started half an hour late", "was recorded in one take", "needs to be tuned",
               "became popular overnight"]),
    "travel": (["the train", "our flight", "the ferry", "the hotel", "the road trip", "the bus to the coast",
                "the guided tour", "the camping trip", "the cruise", "the border crossing"],
               ["was delayed by two hours", "was cheaper than we thought", "offered a great view",
                "was fully booked", "took longer than planned", "ended at a small harbour",
                "was the highlight of the holiday", "got cancelled at the last minute"]),
    "nature": (["the old oak tree", "a family of foxes", "the river", "the wild flowers", "the migrating birds",
                "the coral reef", "the bees", "the desert", "the glacier", "the rainforest"],
               ["is shrinking every year", "bloomed early this spring", "flooded the valley",
                "returned to the lake", "is protected by law", "was full of life", "needs our protection",
                "looked golden at sunset"]),
    "home": (["the kitchen", "the washing machine", "the garden", "the cat", "the old sofa", "the roof",
              "the heating", "the dog", "the neighbours' party", "the new curtains"],
             ["needs to be cleaned", "broke down again", "kept me awake all night", "looks much brighter now",
              "was repaired on Tuesday", "made a terrible mess", "cost more than we expected",
              "is finally finished"]),
}
ADJ = ["quiet", "busy", "beautiful", "strange", "expensive", "crowded", "peaceful", "noisy", "ancient", "modern"]
FEEL = [("happy", "glad"), ("sad", "unhappy"), ("angry", "furious"), ("tired", "exhausted"),
        ("surprised", "astonished"), ("worried", "anxious"), ("excited", "thrilled"), ("bored", "uninterested")]
VERB_PAIRS = [("bought", "purchased"), ("started", "began"), ("finished", "completed"), ("helped", "assisted"),
              ("said", "stated"), ("tried", "attempted"), ("got", "received"), ("showed", "demonstrated"),
              ("needed", "required"), ("looked for", "searched for")]
OBJECTS = ["a red bicycle", "an old map", "two tickets", "a new coat", "some flowers", "the report",
           "a birthday present", "the keys", "a used car", "a bag of apples", "the letter", "a small boat"]
HAND_WRITTEN = [
    "Could you pass the salt, please?", "It's raining again.", "I have never seen anything like it.",
    "Turn left at the second traffic light and keep going until you see the church.",
    "The quick brown fox jumps over the lazy dog.", "Why is the sky blue?",
    "Please remember to lock the door when you leave.", "She laughed.", "Nobody knows where the money went.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "Honestly, I think the second movie was better than the first one.", "What time does the shop close?",
    "The meeting has been moved to Thursday at three.", "Wow, what a game!",
    "Although it was late, the children refused to go to bed.",
    "A triangle has three sides and three angles.", "Let's meet at the café around the corner.",
    "He apologised for being late, but nobody believed his excuse.", "Is this seat taken?",
    "The algorithm sorts the list in linear time when the keys are small integers.",
    "My phone battery died in the middle of the call.", "They planted twenty trees along the street.",
    "Mix the flour and the butter, then add the eggs one at a time.", "I'm not sure that's a good idea.",
    "The committee will announce its decision next month.", "Keep calm and carry on.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar and oxygen.",
    "Do you prefer tea or coffee in the morning?", "The museum is free on the first Sunday of every month.",
    "After years of hard work, she finally opened her own restaurant.",
]


def _statement(rng, topic):
    subj, preds = TOPICS[topic]
    s, p = rng.choice(subj), rng.choice(preds)
    return rng.choice([
        f"{s.capitalize()} {p}.",
        f"{s.capitalize()} {p} {rng.choice(TIMES)}.",
        f"{rng.choice(TIMES).capitalize()}, {s} {p}.",
        f"According to {rng.choice(PEOPLE)}, {s} {p}.",
        f"{rng.choice(NAMES)} told me that {s} {p}.",
        f"I read that {s} {p}, which nobody expected.",
        f"{s.capitalize()} {p}, and {rng.choice(subj)} {rng.choice(preds)}.",
        f"Even though {s} {p}, {rng.choice(PEOPLE)} stayed {rng.choice(FEEL)[0]}.",
        f"{s.capitalize()} {p} because {rng.choice(subj)} {rng.choice(preds)}.",
    ])


def _question(rng, topic):
    subj, preds = TOPICS[topic]
    s = rng.choice(subj)
    return rng.choice([
        f"Why {rng.choice(['did', 'does'])} {s} {rng.choice(['change', 'matter', 'fail', 'work'])}?",
        f"Have you heard that {s} {rng.choice(preds)}?",
        f"Is it true that {s} {rng.choice(preds)}?",
        f"What do you think about {s}?",
        f"When will {s} be ready?",
        f"How did {rng.choice(PEOPLE)} find out about {s}?",
        f"Where can I learn more about {s}?",
    ])


def _instruction(rng, topic):
    subj, _ = TOPICS[topic]
    s = rng.choice(subj)
    return rng.choice([
        f"Please check {s} before you leave.", f"Don't forget to ask {rng.choice(PEOPLE)} about {s}.",
        f"Take a picture of {s} for me.", f"Write a short report about {s}.",
        f"Tell {rng.choice(NAMES)} to meet us at {rng.choice(PLACES)}.",
        f"Let's talk about {s} {rng.choice(TIMES)}.",
    ])


def _short(rng, topic):
    subj, _ = TOPICS[topic]
    return rng.choice([f"{rng.choice(subj).capitalize()}.", f"{rng.choice(ADJ).capitalize()} day.",
                       f"Not {rng.choice(subj)} again!", f"{rng.choice(NAMES)} is {rng.choice(FEEL)[0]}.",
                       f"So {rng.choice(ADJ)}.", f"Off to {rng.choice(PLACES)}."])


def _person(rng, _topic):
    name, place = rng.choice(NAMES), rng.choice(PLACES)
    verb, obj = rng.choice(VERB_PAIRS)[0], rng.choice(OBJECTS)
    return rng.choice([
        f"{name} {verb} {obj} at {place} {rng.choice(TIMES)}.",
        f"{rng.choice(PEOPLE).capitalize()} felt {rng.choice(FEEL)[0]} when {name} arrived at {place}.",
        f"{place.capitalize()} was {rng.choice(ADJ)} {rng.choice(TIMES)}, so {name} went home early.",
        f"{name} and {rng.choice(NAMES)} walked to {place} together and talked about everything.",
    ])


STYLES = [_statement, _statement, _statement, _question, _instruction, _short, _person]


def _paraphrase(rng):
    """The same content said two ways (synonym swaps and restructuring)."""
    name, place, obj = rng.choice(NAMES), rng.choice(PLACES), rng.choice(OBJECTS)
    (v1, v2), (f1, f2) = rng.choice(VERB_PAIRS), rng.choice(FEEL)
    t = rng.choice(TIMES)
    kind = rng.randrange(4)
    if kind == 0:
        return f"{name} {v1} {obj} at {place} {t}.", f"{t.capitalize()}, {name} {v2} {obj} at {place}."
    if kind == 1:
        return (f"{name} was {f1} after visiting {place}.", f"Visiting {place} left {name} feeling {f2}.")
    topic = rng.choice(sorted(TOPICS))
    s, p = rng.choice(TOPICS[topic][0]), rng.choice(TOPICS[topic][1])
    if kind == 2:
        return f"{s.capitalize()} {p}.", f"It turned out that {s} {p}."
    return f"{rng.choice(PEOPLE).capitalize()} said that {s} {p}.", f"We were told {s} {p}."


def build(seed: int = SEED) -> dict:
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    seen, sentences = set(HAND_WRITTEN), list(HAND_WRITTEN)
    while len(sentences) < N_TRAIN + N_HELDOUT:
        s = rng.choice(STYLES)(rng, rng.choice(topics))
        if s not in seen:
            seen.add(s)
            sentences.append(s)
    rng.shuffle(sentences)
    pairs = []
    while len(pairs) < N_PAIRS:
        a, b = _paraphrase(rng)
        if a not in seen and b not in seen:
            seen.update((a, b))
            pairs.append([a, b])
    return {"train": sentences[:N_TRAIN], "heldout": sentences[N_TRAIN:], "pairs": pairs}


def main() -> None:
    out = Path(__file__).resolve().parents[1] / "data" / "sentences"
    out.mkdir(parents=True, exist_ok=True)
    d = build()
    for split in ("train", "heldout"):
        (out / f"{split}.txt").write_text("\n".join(d[split]) + "\n", encoding="utf-8")
    (out / "paraphrase_pairs.json").write_text(json.dumps(d["pairs"], indent=0, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
    print({k: len(v) for k, v in d.items()}, "->", out)


if __name__ == "__main__":
    main()
