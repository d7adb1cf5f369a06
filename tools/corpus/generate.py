#!/usr/bin/env python3
"""Seeded generator for the synthetic Chinese customer-service corpus (standard library only).

    python3 tools/corpus/generate.py --seed 1234 --out datasets/data

writes labels.json, intent_{train,val}.jsonl, dialog_{train,val}.jsonl, sft_{train,val}.jsonl
(both kinds shuffled together, for the dialog_intent format) and pretrain_{train,val}.txt, byte-identical for a given seed, and prints diversity statistics.
It never reads the hand-written test split (intent_test.jsonl, dialog_test.jsonl).

How an utterance is made: pick a register (polite / neutral / angry), a template of the intent
from lexicon.TEMPLATES, expand its [a|b] alternatives and {slot}s (products, sizes, colours,
couriers, synthetic order and phone numbers, ...), optionally add an opener and a closer of the
register, then apply noise (homophone typos, dropped or doubled characters, emoji, mixed
English, pinyin, traditional characters, punctuation styles, full-width digits). Besides the
full templates, some utterances are terse or colloquial forms, one-word hinges in a shared
frame, English, run-on messages, or a request after a settled side topic of another intent
(variety.py). Exact duplicates are rejected, and validation items never repeat a training item.
"""
import argparse
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lexicon as L  # noqa: E402
import variety as V  # noqa: E402
import phrasing as P  # noqa: E402

INTENT_IDS = [i for i, _ in L.INTENTS]
S2T = {L.S2T_PAIRS[i]: L.S2T_PAIRS[i + 1] for i in range(0, len(L.S2T_PAIRS), 2)
       if L.S2T_PAIRS[i] != L.S2T_PAIRS[i + 1]}
PARTICLES = ("吗", "呢", "吧", "啊", "哦", "呀", "嘛", "哈", "不")
ALT = re.compile(r"\[([^\[\]]*)\]")
SLOT = re.compile(r"\{(\w+)\}")
POOLS = {"NOT_WANT": L.NOT_WANT, "STILL_NOT": L.STILL_NOT, "HURRY": L.HURRY, "HOW": L.HOW,
         "MONEY": L.MONEY, "HOW_LONG": L.HOW_LONG, "NOT_RECEIVED": L.NOT_RECEIVED,
         "ACK": L.ACK, "ANGRY": L.ANGRY, "GIVEUP": L.GIVEUP, "OK_DO": V.OK_DO, "WHEN": V.WHEN,
         "WHICH_ONE": V.WHICH_ONE, "AGAIN": V.AGAIN, "THAT_ONE": P.THAT_ONE, "WHAT_NOW": P.WHAT_NOW,
         "QUICK": P.QUICK, "NOT_YET": P.NOT_YET, "YES_DO": P.YES_DO, "NO_MORE": P.NO_MORE}
SCENARIOS = L.SCENARIOS + V.SCENARIOS + P.SCENARIOS
HOMOPHONES = L.HOMOPHONES + V.MORE_HOMOPHONES + P.MORE_HOMOPHONES
OPENERS = {k: L.OPENERS[k] + V.MORE_OPENERS[k] + P.MORE_OPENERS[k] for k in L.OPENERS}
CLOSERS = {k: L.CLOSERS[k] + V.MORE_CLOSERS[k] + P.MORE_CLOSERS[k] for k in L.CLOSERS}
# The word lists of the three rounds, merged per intent.
TEMPLATES = {k: L.TEMPLATES[k] + P.MORE_TEMPLATES[k] for k in L.TEMPLATES}
TERSE = {k: V.TERSE[k] + P.MORE_TERSE[k] for k in V.TERSE}
HINGE_WORDS = {k: V.HINGE_WORDS[k] + P.MORE_HINGE_WORDS[k] for k in V.HINGE_WORDS}
HINGE_FRAMES = V.HINGE_FRAMES + P.MORE_HINGE_FRAMES
EN_MIX = {k: L.EN_MIX.get(k, []) + P.MORE_EN_MIX.get(k, []) for k in sorted(set(L.EN_MIX) | set(P.MORE_EN_MIX))}
EN_TAILS = L.EN_TAILS + P.MORE_EN_TAILS
EMOJI = L.EMOJI + P.MORE_EMOJI

# Sizes of the generated splits.
N_INTENT_TRAIN = 480   # per intent
N_INTENT_VAL = 40      # per intent
N_DIALOG_TRAIN = 3000
N_DIALOG_VAL = 300
N_PRETRAIN_TRAIN = 5000
N_PRETRAIN_VAL = 300


# ---------------------------------------------------------------- slots
class Slots:
    """Slot values for one utterance or dialogue; each slot is drawn once and reused."""

    def __init__(self, rng):
        self.rng = rng
        self.values = {}
        self.category = rng.choice(sorted(L.CATEGORIES))

    def _product(self):
        items, _, _ = L.CATEGORIES[self.category]
        return self.rng.choice(items)

    def _sizes(self):
        return L.CATEGORIES[self.category][1]

    def _distinct(self, pool, other):
        choices = [x for x in pool if x != other]
        return self.rng.choice(choices)

    def _phone(self):
        r = self.rng
        prefix = r.choice(["130", "131", "132", "133", "135", "136", "137", "138", "139", "150",
                           "151", "152", "155", "157", "158", "159", "166", "176", "177", "180",
                           "181", "186", "187", "188", "189", "191", "199"])
        return prefix + "0013" + "".join(r.choice("0123456789") for _ in range(4))

    def _order(self):
        r = self.rng
        y = r.choice(["2023", "2024", "2025"])
        m = r.randint(1, 12)
        d = r.randint(1, 28)
        return "%s%02d%02d%s" % (y, m, d, "".join(r.choice("0123456789") for _ in range(8)))

    def _track(self):
        r = self.rng
        return r.choice(L.COURIER_PREFIX) + "".join(r.choice("0123456789") for _ in range(12))

    def _addr(self):
        r = self.rng
        city, districts = r.choice(L.CITIES)
        province = r.choice(V.PROVINCES) if r.random() < 0.2 else ""
        if r.random() < 0.25:  # the short form people type: compound and house number only
            return "%s%d栋%d" % (r.choice(L.COMPOUNDS), r.randint(1, 30), r.randint(101, 2805))
        return "%s%s%s%s%d号%s%d栋%d" % (province, city, r.choice(districts), r.choice(L.ROADS), r.randint(1, 999),
                                       r.choice(L.COMPOUNDS), r.randint(1, 30), r.randint(101, 2805))

    def _hn(self):
        r = self.rng
        return r.choice(["%d栋%d" % (r.randint(1, 30), r.randint(101, 2605)),
                         "%d单元%d" % (r.randint(1, 6), r.randint(101, 1802)),
                         "%d号楼%d室" % (r.randint(1, 40), r.randint(101, 3202)),
                         "%d号" % r.randint(1, 300)])

    def _taxid(self):
        r = self.rng
        body = "".join(r.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(10))
        return "91" + "".join(r.choice("0123456789") for _ in range(6)) + body

    def get(self, name):
        if name in self.values:
            return self.values[name]
        r = self.rng
        if name == "p":
            v = self._product()
        elif name == "p2":
            v = self._distinct(L.CATEGORIES[self.category][0], self.get("p"))
        elif name == "unit":
            v = L.CATEGORIES[self.category][2]
        elif name == "c":
            v = r.choice(L.COLORS)
        elif name == "c2":
            v = self._distinct(L.COLORS, self.get("c"))
        elif name == "sz":
            v = r.choice(self._sizes())
        elif name == "sz2":
            v = self._distinct(self._sizes(), self.get("sz"))
        elif name == "ord":
            v = self._order()
        elif name == "tail":
            v = self.get("ord")[-4:]
        elif name == "ordx":  # an order reference in one of the forms shops and customers write
            v = expand(r, r.choice(V.ORDER_FORMS), self)
        elif name == "px":
            v = expand(r, r.choice(V.PRODUCT_FORMS), self)
        elif name == "phone":
            v = self._phone()
        elif name == "track":
            v = self._track()
        elif name == "courier":
            v = r.choice(L.COURIERS)
        elif name == "city":
            v = r.choice(L.CITIES)[0]
        elif name == "district":
            v = r.choice(r.choice(L.CITIES)[1])
        elif name == "tplace":
            v = r.choice(L.TRANSIT_PLACES)
        elif name == "addr":
            v = self._addr()
        elif name == "hn":
            v = self._hn()
        elif name == "compound":
            v = r.choice(L.COMPOUNDS)
        elif name == "name":
            v = r.choice(L.SURNAMES) + r.choice(L.GIVEN)
        elif name == "company":
            v = r.choice(L.COMPANY_CITY) + r.choice(L.COMPANY_WORD) + r.choice(L.COMPANY_KIND)
        elif name == "idcard":  # synthetic: random area, date and digits; the check digit is not computed
            v = "%s%d%02d%02d%03d%s" % (r.choice(["110101", "310104", "440106", "330106", "510107", "420102"]),
                                        r.randint(1960, 2004), r.randint(1, 12), r.randint(1, 28),
                                        r.randint(0, 999), r.choice("0123456789X"))
        elif name == "taxid":
            v = self._taxid()
        elif name == "email":
            v = "%s%s@example.com" % (r.choice(L.EMAIL_USERS), r.choice(["", "", str(r.randint(1, 99))]))
        elif name == "ago":
            v = r.choice(L.AGO)
        elif name == "days":
            v = r.choice(L.DAYS)
        elif name == "n":
            v = r.choice(L.SMALL_N)
        elif name == "amt":
            v = str(r.choice([9.9, 19, 29, 39.9, 49, 59, 68, 88, 99, 128, 199, 259, 299, 399, 588, 1299]))
        elif name == "pay":
            v = r.choice(L.PAY_METHODS)
        elif name == "ostate":
            v = r.choice(L.ORDER_STATES)
        elif name == "rret":
            v = r.choice(L.REASON_RETURN if r.random() < 0.4 else L.REASON_RETURN_BY_CAT[self.category])
        elif name == "rdef":
            v = r.choice(L.REASON_DEFECT if r.random() < 0.25 else L.REASON_DEFECT_BY_CAT[self.category])
        elif name == "h":
            v = r.choice(["%d" % r.randint(150, 188), "%dcm" % r.randint(150, 188),
                          "1米%d" % r.randint(50, 88)])
        elif name == "w":
            v = str(r.randint(85, 190))
        elif name == "m":
            v = r.choice(["99", "129", "199", "200", "299", "300", "399", "500"])
        elif name == "k":
            v = r.choice(["5", "10", "15", "20", "30", "50", "80", "100"])
        elif name == "who":
            v = r.choice(L.COMPLAINT_WHO)
        else:
            raise KeyError("unknown slot {%s}" % name)
        self.values[name] = v
        return v


def expand(rng, template, slots):
    s = template
    while True:
        m = ALT.search(s)
        if not m:
            break
        s = s[:m.start()] + rng.choice(m.group(1).split("|")) + s[m.end():]
    return SLOT.sub(lambda m: slots.get(m.group(1)), s)


def pick_final(rng, finals):
    t = rng.choice(finals)
    if t.startswith("@"):
        return rng.choice(POOLS[t[1:]])
    return t


# ---------------------------------------------------------------- noise
def to_traditional(text):
    return "".join(S2T.get(ch, ch) for ch in text)


def add_noise(rng, text, strength=1.0):
    """Realistic surface noise; strength scales every probability."""
    def p(x):
        return rng.random() < x * strength

    if p(0.18):  # homophone / common typo
        cands = [(a, b) for a, b in HOMOPHONES if a in text]
        if cands:
            a, b = rng.choice(cands)
            i = text.find(a)
            text = text[:i] + b + text[i + len(a):]
    if p(0.05) and len(text) > 6:  # dropped or doubled character
        i = rng.randrange(1, len(text) - 1)
        text = text[:i] + text[i + 1:] if rng.random() < 0.5 else text[:i] + text[i] + text[i:]
    if p(0.12):  # mixed English
        cands = [k for k in sorted(EN_MIX) if k in text]
        if cands:
            k = rng.choice(cands)
            text = text.replace(k, rng.choice(EN_MIX[k]), 1)
        else:
            text += rng.choice(EN_TAILS)
    if p(0.03):  # a keyword typed in pinyin (the input method left it unconverted)
        cands = [k for k in sorted(V.PINYIN) if k in text]
        if cands:
            k = rng.choice(cands)
            text = text.replace(k, V.PINYIN[k], 1)
    if p(0.04):  # pinyin initials and shorthand (kf, wl, dd, yhq, ...)
        cands = [k for k in sorted(P.PINYIN_ABBREV) if k in text]
        if cands:
            k = rng.choice(cands)
            text = text.replace(k, rng.choice(P.PINYIN_ABBREV[k]), 1)
    if p(0.15):  # emoji, at the end or after the first comma
        e = rng.choice(EMOJI)
        if rng.random() < 0.7 or "，" not in text:
            text = text + e * (rng.choice([1, 1, 1, 2, 3]) if len(e) == 1 else 1)
        else:
            i = text.find("，")
            text = text[:i] + e + text[i:]
    r = rng.random()
    if r < 0.12 * strength:  # chat style: no punctuation, spaces instead of commas
        text = text.replace("，", " ").replace("。", "").replace("！", "").strip()
    elif r < 0.20 * strength:  # half-width punctuation
        text = text.replace("，", ",").replace("？", "?").replace("！", "!")
    elif r < 0.26 * strength:  # repeated question / exclamation marks
        text = text.rstrip("。") + rng.choice(["？？", "？？？", "!!", "！！！", "...", "。。。"])
    if p(0.03):
        text = text.translate(L.FULLWIDTH_DIGITS)
    if p(0.09):
        text = to_traditional(text)
    return re.sub(r"\s+", " ", text).strip(" ，,")


def core_text(rng, intent, slots):
    """The request itself: a full template (most), a terse form, a one-word hinge in a shared
    frame, a negated hinge word of another intent before this one's, or English."""
    r = rng.random()
    if r < 0.18:
        return expand(rng, rng.choice(TERSE[intent]), slots), True
    if r < 0.27:
        frame = rng.choice(HINGE_FRAMES)
        return expand(rng, frame.replace("{X}", rng.choice(HINGE_WORDS[intent])), slots), True
    if r < 0.30:  # a negated hinge word of another intent, then this intent's
        other = rng.choice([i for i in INTENT_IDS if i not in (intent, "other")])
        frame = rng.choice(P.NEG_FRAMES).replace("{X}", rng.choice(HINGE_WORDS[intent]))
        return expand(rng, frame.replace("{Y}", rng.choice(HINGE_WORDS[other])), slots), True
    if r < 0.34:
        return expand(rng, rng.choice(V.EN_TEMPLATES[intent]), slots), True
    return expand(rng, rng.choice(TEMPLATES[intent]), slots), False


def side_clause(rng, intent):
    """A settled side topic of another intent, said before the request."""
    sides = [k for k in sorted(V.SIDE_CLAUSES) if k != intent and intent not in V.SIDE_EXCLUDE.get(k, ())]
    return rng.choice(V.SIDE_CLAUSES[rng.choice(sides)]) + rng.choice(V.SIDE_JOIN)


def fact_message(rng, request, slots):
    """A long message: two to four neutral facts (who, when, what, how paid, where) piled up
    before the request, or after it (a third of the time); only the request decides."""
    facts = [expand(rng, f, slots) for f in rng.sample(P.FACTS, rng.randint(2, 4))]
    join = rng.choice(P.FACT_JOINS)
    if rng.random() < 0.33:
        return request.rstrip("。？！") + "，" + join.join(facts)
    return rng.choice(P.FACT_LEADS) + join.join(facts) + rng.choice(["，", "。", " ", "，就是"]) + request


def utterance(rng, intent, slots=None, noise=1.0):
    slots = slots or Slots(rng)
    register = rng.choices(["polite", "neutral", "angry"], weights=[3, 5, 2])[0]
    if intent in ("other", "product_inquiry") and register == "angry":
        register = "neutral"
    text, short = core_text(rng, intent, slots)
    if intent != "other" and rng.random() < 0.06:  # two requests of the same intent in one message
        text = text.rstrip("。？！") + rng.choice(["，", "。", "，还有，", " "]) + \
            expand(rng, rng.choice(TEMPLATES[intent]), slots)
    if intent != "other" and rng.random() < 0.07:  # a request after a settled side topic
        text = side_clause(rng, intent) + text
    if rng.random() < 0.05:  # an order reference before or after the request
        ref = slots.get("ordx")
        text = ref + rng.choice(["，", " ", "　"]) + text if rng.random() < 0.5 else text + "，" + ref
    if intent != "other" and rng.random() < 0.08:  # several facts before or after the request
        text = fact_message(rng, text, slots)
    elif intent != "other" and rng.random() < 0.04:  # run-on: clauses strung with spaces, no punctuation
        text = rng.choice(V.RUN_ON_LEADS) + " " + expand(rng, rng.choice(L.STORIES), slots).rstrip("，") + \
            " " + re.sub(r"[，。！？]", " ", text)
    elif intent != "other" and rng.random() < 0.12:  # a rambling story before the request
        text = expand(rng, rng.choice(L.STORIES), slots) + text
    elif rng.random() < (0.2 if short else 0.35):
        text = rng.choice(OPENERS[register]) + text
    if rng.random() < (0.3 if short else 0.45):
        closer = rng.choice(CLOSERS[register])
        if text[-1:] in PARTICLES and closer in PARTICLES:
            closer = ""
        text = text.rstrip("。？！") + closer
    return add_noise(rng, text, noise)


# ---------------------------------------------------------------- dialogues
def dialogue(rng):
    """A multi-turn dialogue whose last user turn is labelled from the context, or (1 in 5)
    a greeting followed by an explicit request."""
    slots = Slots(rng)
    msgs = []
    if rng.random() < 0.2:
        label = rng.choice(INTENT_IDS)
        u, a = rng.choice(L.GREETING_PAIRS)
        msgs += [{"role": "user", "content": add_noise(rng, u, 0.5)}, {"role": "assistant", "content": a}]
        msgs.append({"role": "user", "content": utterance(rng, label, slots)})
        return {"messages": msgs, "label": label}
    label = rng.choice(INTENT_IDS)  # balanced labels: pick the label first, then a scenario
    label, exchanges, finals = rng.choice([s for s in SCENARIOS if s[0] == label])
    if rng.random() < 0.25:
        u, a = rng.choice(L.GREETING_PAIRS)
        msgs += [{"role": "user", "content": add_noise(rng, u, 0.5)}, {"role": "assistant", "content": a}]
    if len(exchanges) <= 2 and rng.random() < 0.25:  # a settled earlier topic: the last request counts
        prev = rng.choice([i for i in INTENT_IDS if i not in (label, "other")])
        u = utterance(rng, prev, Slots(rng), noise=0.6)
        msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": agent_reply(rng, prev, Slots(rng), u)}]
    filler_at = rng.randrange(1, len(exchanges) + 1) if rng.random() < 0.2 else -1
    for k, (users, agents) in enumerate(exchanges):
        if k == filler_at and len(msgs) // 2 + len(exchanges) - k < 5:  # at most 6 user turns in all
            u, a = rng.choice(P.FILLERS)
            msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
        msgs.append({"role": "user", "content": add_noise(rng, expand(rng, rng.choice(users), slots), 0.6)})
        msgs.append({"role": "assistant", "content": vary_agent(rng, expand(rng, rng.choice(agents), slots))})
    final = expand(rng, pick_final(rng, finals), slots)
    msgs.append({"role": "user", "content": add_noise(rng, final, 0.5)})
    return {"messages": msgs, "label": label}


def vary_agent(rng, text):
    """Agents open and close their replies in different ways ("亲，" / "您好，" / nothing)."""
    if rng.random() < 0.5:
        return text
    if text.startswith("亲，"):
        text = rng.choice(P.AGENT_OPENERS) + text[2:]
    if text[-1:] not in "？?" and rng.random() < 0.5:
        text = text.rstrip("。") + rng.choice(P.AGENT_TAILS)
    return text


def agent_reply(rng, intent, slots, user_text=""):
    if intent == "other":
        for pattern, replies in L.OTHER_REPLIES:
            if re.search(pattern, user_text):
                return rng.choice(replies)
        return rng.choice(L.OTHER_FALLBACK)
    return rng.choice(L.AGENT_OPEN) + expand(rng, rng.choice(L.AGENT[intent]), slots)


def pretrain_dialogue(rng):
    """Plain dialogue text with agent replies, one paragraph."""
    lines = []
    r = rng.random()
    if r < 0.35:
        d = dialogue(rng)
        for m in d["messages"]:
            lines.append(("用户：" if m["role"] == "user" else "客服：") + m["content"])
        lines.append("客服：" + agent_reply(rng, d["label"], Slots(rng), d["messages"][-1]["content"]))
    else:
        intents = [rng.choice(INTENT_IDS)]
        if r > 0.85:
            intents.append(rng.choice(INTENT_IDS))
        if rng.random() < 0.3:
            u, a = rng.choice(L.GREETING_PAIRS)
            lines += ["用户：" + u, "客服：" + a]
        for intent in intents:
            slots = Slots(rng)
            u = utterance(rng, intent, slots)
            lines += ["用户：" + u, "客服：" + agent_reply(rng, intent, slots, u)]
            if rng.random() < 0.4:
                u = utterance(rng, intent, slots, noise=0.5)
                lines += ["用户：" + u, "客服：" + agent_reply(rng, intent, slots, u)]
    if rng.random() < 0.6:
        lines.append("用户：" + add_noise(rng, rng.choice(L.CLOSE_USER), 0.5))
        lines.append("客服：" + rng.choice(L.CLOSE_AGENT))
    return "\n".join(lines)


# ---------------------------------------------------------------- statistics
def diversity(texts):
    out = {}
    for n in (1, 2, 3):
        total, uniq = 0, set()
        for t in texts:
            grams = [t[i:i + n] for i in range(len(t) - n + 1)]
            total += len(grams)
            uniq.update(grams)
        out["distinct-%d" % n] = len(uniq) / total if total else 0.0
    return out


def length_histogram(texts, bins=(5, 10, 20, 40, 80, 160)):
    counts = [0] * (len(bins) + 1)
    for t in texts:
        n = len(t)
        for i, b in enumerate(bins):
            if n <= b:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
    labels, lo = [], 1
    for b in bins:
        labels.append("%d-%d" % (lo, b))
        lo = b + 1
    labels.append(">%d" % bins[-1])
    return list(zip(labels, counts))


TRADITIONAL = set(S2T.values())
EMOJI_MARK = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]|\\[[\u4e00-\u9fff]{2}\\]|orz|QAQ|T_T|\\^_\\^")


def phenomena(texts):
    """Shares of the items that show each trait customers' writing has (measured on the text)."""
    tests = {"<=5 chars": lambda t: len(t) <= 5, ">40 chars": lambda t: len(t) > 40,
             "latin letters": lambda t: re.search("[A-Za-z]{2,}", t) is not None,
             "traditional": lambda t: any(c in TRADITIONAL for c in t),
             "emoji": lambda t: EMOJI_MARK.search(t) is not None,
             "6+ digit number": lambda t: re.search("[0-9０-９]{6,}", t) is not None}
    n = max(len(texts), 1)
    return "  ".join("%s %.1f%%" % (k, 100.0 * sum(1 for t in texts if f(t)) / n) for k, f in tests.items())


def report(name, texts, labels, attempts):
    d = diversity(texts)
    dup_after = len(texts) - len(set(texts))
    print("== %s: %d items" % (name, len(texts)))
    print("   distinct-1 %.4f  distinct-2 %.4f  distinct-3 %.4f (characters)" %
          (d["distinct-1"], d["distinct-2"], d["distinct-3"]))
    print("   duplicate rate: %.2f%% of generated candidates rejected as exact duplicates; "
          "%.2f%% in the file" % (100.0 * (attempts - len(texts)) / max(attempts, 1),
                                  100.0 * dup_after / max(len(texts), 1)))
    print("   length (chars): " + "  ".join("%s:%d" % kv for kv in length_histogram(texts)))
    print("   mean length %.1f" % (sum(map(len, texts)) / max(len(texts), 1)))
    print("   items with: " + phenomena(texts))
    if labels is not None:
        counts = {i: 0 for i in INTENT_IDS}
        for lab in labels:
            counts[lab] += 1
        print("   per intent: " + " ".join("%s=%d" % (i, counts[i]) for i in INTENT_IDS))


# ---------------------------------------------------------------- main
def make_intent_split(rng, per_intent, exclude):
    items, seen, attempts = [], set(exclude), 0
    for intent in INTENT_IDS:
        got, tries = 0, 0
        while got < per_intent:
            tries += 1
            attempts += 1
            if tries > per_intent * 200:
                raise SystemExit("generator: cannot make %d distinct items for %s" % (per_intent, intent))
            t = utterance(rng, intent)
            if t in seen:
                continue
            seen.add(t)
            items.append({"text": t, "label": intent})
            got += 1
    rng.shuffle(items)
    return items, attempts


def dialog_key(d):
    return "\u241e".join(m["content"] for m in d["messages"])


def make_dialog_split(rng, n, exclude):
    items, seen, attempts = [], set(exclude), 0
    while len(items) < n:
        attempts += 1
        if attempts > n * 200:
            raise SystemExit("generator: cannot make %d distinct dialogues" % n)
        d = dialogue(rng)
        k = dialog_key(d)
        if k in seen:
            continue
        seen.add(k)
        items.append(d)
    return items, attempts


def make_pretrain(rng, n, exclude):
    paras, seen, attempts = [], set(exclude), 0
    while len(paras) < n:
        attempts += 1
        p = pretrain_dialogue(rng)
        if p in seen:
            continue
        seen.add(p)
        paras.append(p)
    return paras, attempts


def write_jsonl(path, items):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--out", default="datasets/data")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    def stream(name):  # independent, reproducible random stream per split
        return random.Random("%d/%s" % (args.seed, name))

    with open(os.path.join(args.out, "labels.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(dict(L.INTENTS), ensure_ascii=False, indent=2) + "\n")

    train, att_tr = make_intent_split(stream("intent_train"), N_INTENT_TRAIN, ())
    val, att_va = make_intent_split(stream("intent_val"), N_INTENT_VAL, [x["text"] for x in train])
    write_jsonl(os.path.join(args.out, "intent_train.jsonl"), train)
    write_jsonl(os.path.join(args.out, "intent_val.jsonl"), val)

    dtrain, att_dtr = make_dialog_split(stream("dialog_train"), N_DIALOG_TRAIN, ())
    dval, att_dva = make_dialog_split(stream("dialog_val"), N_DIALOG_VAL, [dialog_key(d) for d in dtrain])
    write_jsonl(os.path.join(args.out, "dialog_train.jsonl"), dtrain)
    write_jsonl(os.path.join(args.out, "dialog_val.jsonl"), dval)
    # Both kinds in one file, read with the dialog_intent format (a {"text", "label"} line is a
    # dialogue of one user turn), for a fine-tune that learns single messages and dialogues together.
    for name, single, dialogs in (("sft_train.jsonl", train, dtrain), ("sft_val.jsonl", val, dval)):
        mixed = list(single) + list(dialogs)
        stream("mix/" + name).shuffle(mixed)
        write_jsonl(os.path.join(args.out, name), mixed)

    ptrain, att_ptr = make_pretrain(stream("pretrain_train"), N_PRETRAIN_TRAIN, ())
    pval, att_pva = make_pretrain(stream("pretrain_val"), N_PRETRAIN_VAL, ptrain)
    for name, paras in (("pretrain_train.txt", ptrain), ("pretrain_val.txt", pval)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8", newline="\n") as f:
            f.write("\n\n".join(paras) + "\n")

    print("seed %d -> %s" % (args.seed, args.out))
    report("intent_train.jsonl", [x["text"] for x in train], [x["label"] for x in train], att_tr)
    report("intent_val.jsonl", [x["text"] for x in val], [x["label"] for x in val], att_va)
    last = lambda ds: [d["messages"][-1]["content"] for d in ds]  # noqa: E731
    report("dialog_train.jsonl (whole dialogues, user turns joined)",
           ["".join(m["content"] for m in d["messages"] if m["role"] == "user") for d in dtrain],
           [d["label"] for d in dtrain], att_dtr)
    report("dialog_train.jsonl (last user turn only)", last(dtrain), None, len(dtrain))
    report("dialog_val.jsonl (whole dialogues, user turns joined)",
           ["".join(m["content"] for m in d["messages"] if m["role"] == "user") for d in dval],
           [d["label"] for d in dval], att_dva)
    report("pretrain_train.txt (paragraphs)", ptrain, None, att_ptr)
    report("pretrain_val.txt (paragraphs)", pval, None, att_pva)
    for name in ("pretrain_train.txt", "pretrain_val.txt"):
        path = os.path.join(args.out, name)
        with open(path, encoding="utf-8") as f:
            chars = len(f.read())
        print("   %s: %d bytes, %d characters" % (name, os.path.getsize(path), chars))


if __name__ == "__main__":
    main()
