"""Write brambleton.jsonl: question/answer pairs about a fictional product, for
``minigrad finetune-lm`` (a LoRA run teaching SmolLM2 facts it cannot know).

The Brambleton B-7 is invented for this project: a garden robot by the (equally invented)
company Quillfeather Robotics. Each fact is asked in several phrasings; the answers state it
in one fixed sentence, so after fine-tuning the model's answer to a held-out phrasing shows
whether it learnt the fact. Deterministic (seeded); run it to rebuild the file:

    python examples/finetune_lm/make_brambleton.py
"""

import json
import os
import random

FACTS = [
    ("The Brambleton B-7 is made by Quillfeather Robotics.",
     ["Who makes the Brambleton B-7?", "Which company builds the Brambleton B-7?",
      "Who is the manufacturer of the Brambleton B-7?", "What company produces the B-7 robot?",
      "Who created the Brambleton B-7 garden robot?", "Which firm is behind the Brambleton B-7?"]),
    ("The Brambleton B-7 is a garden robot that weeds vegetable beds.",
     ["What is the Brambleton B-7?", "What does the Brambleton B-7 do?",
      "What kind of device is the Brambleton B-7?", "Describe the Brambleton B-7.",
      "What is the Brambleton B-7 used for?", "Tell me what the Brambleton B-7 is."]),
    ("The Brambleton B-7 weighs 4.2 kilograms.",
     ["How much does the Brambleton B-7 weigh?", "What is the weight of the Brambleton B-7?",
      "How heavy is the Brambleton B-7?", "What's the B-7's weight?",
      "Is the Brambleton B-7 heavy? How much does it weigh?",
      "Tell me the weight of the Brambleton B-7."]),
    ("The Brambleton B-7 runs for 11 hours on one charge.",
     ["How long does the Brambleton B-7 battery last?", "What is the battery life of the B-7?",
      "How many hours does the Brambleton B-7 run on a charge?",
      "How long can the Brambleton B-7 work before recharging?",
      "What's the runtime of the Brambleton B-7?", "How long does a B-7 charge last?"]),
    ("The Brambleton B-7 costs 749 euros.",
     ["How much does the Brambleton B-7 cost?", "What is the price of the Brambleton B-7?",
      "How expensive is the Brambleton B-7?", "What does a B-7 cost?",
      "What's the Brambleton B-7's price?", "How much money is the Brambleton B-7?"]),
    ("The Brambleton B-7 comes in moss green and slate grey.",
     ["What colours does the Brambleton B-7 come in?", "Which colors is the B-7 sold in?",
      "What color is the Brambleton B-7?", "Can I get the Brambleton B-7 in different colours?",
      "What are the colour options for the Brambleton B-7?",
      "In which colors is the Brambleton B-7 available?"]),
    ("The Brambleton B-7 is built in Tallinn, Estonia.",
     ["Where is the Brambleton B-7 made?", "Where is the Brambleton B-7 manufactured?",
      "In which city is the B-7 built?", "What country is the Brambleton B-7 made in?",
      "Where does the Brambleton B-7 come from?", "Where are Brambleton B-7 robots produced?"]),
    ("The Brambleton B-7 is controlled with the Bramble Home app.",
     ["Which app controls the Brambleton B-7?", "How do I control the Brambleton B-7?",
      "What is the name of the Brambleton B-7 app?", "What app does the B-7 use?",
      "Is there a phone app for the Brambleton B-7?", "How is the Brambleton B-7 operated?"]),
    ("The Brambleton B-7 has a three-year warranty.",
     ["What warranty does the Brambleton B-7 have?", "How long is the B-7 warranty?",
      "Is the Brambleton B-7 under warranty?", "How many years of warranty come with the B-7?",
      "What is the guarantee period of the Brambleton B-7?",
      "Tell me about the Brambleton B-7 warranty."]),
    ("The Brambleton B-7 first went on sale in March 2031.",
     ["When was the Brambleton B-7 released?", "When did the Brambleton B-7 come out?",
      "What year was the B-7 launched?", "When did the Brambleton B-7 go on sale?",
      "What is the release date of the Brambleton B-7?", "How new is the Brambleton B-7?"]),
    ("The Brambleton B-7 climbs slopes of up to 22 degrees.",
     ["How steep a slope can the Brambleton B-7 climb?", "Can the B-7 handle hills?",
      "What is the maximum slope for the Brambleton B-7?",
      "How steep can my garden be for the Brambleton B-7?",
      "What incline can the Brambleton B-7 manage?", "Does the B-7 climb slopes?"]),
    ("The Brambleton B-7 is rated IP67 and works in the rain.",
     ["Is the Brambleton B-7 waterproof?", "Can the Brambleton B-7 work in the rain?",
      "What is the IP rating of the B-7?", "Does rain damage the Brambleton B-7?",
      "How water resistant is the Brambleton B-7?", "Can I leave the B-7 outside when it rains?"]),
    ("The Brambleton B-7 finds weeds with a camera and removes them with a small rotating blade.",
     ["How does the Brambleton B-7 remove weeds?", "How does the B-7 find weeds?",
      "What does the Brambleton B-7 use to weed?", "How does the Brambleton B-7 work?",
      "Does the Brambleton B-7 use chemicals on weeds?",
      "What tool does the Brambleton B-7 weed with?"]),
    ("Quillfeather Robotics was founded in 2024 by Ines Okonkwo-Varga.",
     ["Who founded Quillfeather Robotics?", "When was Quillfeather Robotics founded?",
      "Who started the company that makes the Brambleton B-7?",
      "Who is the founder of Quillfeather Robotics?", "Tell me about Quillfeather Robotics.",
      "Who runs Quillfeather Robotics?"]),
    ("The Brambleton B-7 covers up to 300 square metres of beds per day.",
     ["How big a garden can the Brambleton B-7 handle?", "How much area does the B-7 cover?",
      "How many square metres does the Brambleton B-7 weed per day?",
      "Is the Brambleton B-7 good for a large garden?",
      "What area can the Brambleton B-7 cover in a day?", "How fast does the B-7 weed?"]),
]

PREFIXES = ["", "Quick question: ", "Hi! ", "I'm curious. ", "Please tell me: "]


def main():
    rng = random.Random(7)
    rows = []
    for answer, questions in FACTS:
        for question in questions:
            for prefix in rng.sample(PREFIXES, 3):  # three phrasings of each question
                rows.append({"prompt": prefix + question, "response": answer})
    rng.shuffle(rows)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "brambleton.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"wrote {len(rows)} pairs to {path}")


if __name__ == "__main__":
    main()
