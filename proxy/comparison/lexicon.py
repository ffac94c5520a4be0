"""Word lists the prose fact rules need: units, currencies, months, number words,
negations, yes/no words, the common words that start sentences, refusal and courtesy
phrases.

Layer: pure core (data only). Kept apart from the rules so a list can grow without
touching the logic, and kept small on purpose: every entry is something LLM answers
say often. English first, with the commonest forms of French, Spanish, German,
Italian and Portuguese where they cost one line.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Units after a number: alias -> (canonical unit, factor to that unit). Units of one
# family share a canonical unit so "1 hour" == "60 minutes" and "1 km" == "1000 m";
# families are never converted into each other (miles are not kilometres).
UNITS: dict[str, tuple[str, float]] = {}


def _unit(canonical: str, factor: float, aliases: str) -> None:
    for alias in aliases.split():
        UNITS[alias] = (canonical, factor)


_unit("s", 0.001, "ms msec millisecond milliseconds")
_unit("s", 1, "s sec secs second seconds")
_unit("s", 60, "min mins minute minutes")
_unit("s", 3600, "h hr hrs hour hours")
_unit("s", 86_400, "day days")
_unit("s", 604_800, "wk wks week weeks")
_unit("month", 1, "month months")
_unit("year", 1, "yr yrs year years")
_unit("m", 0.001, "mm millimeter millimeters millimetre millimetres")
_unit("m", 0.01, "cm centimeter centimeters centimetre centimetres")
_unit("m", 1, "m meter meters metre metres")
_unit("m", 1000, "km kilometer kilometers kilometre kilometres")
_unit("in", 1, "in inch inches")
_unit("in", 12, "ft foot feet")
_unit("mi", 1, "mi mile miles")
_unit("g", 0.001, "mg milligram milligrams")
_unit("g", 1, "g gram grams")
_unit("g", 1000, "kg kgs kilo kilos kilogram kilograms")
_unit("g", 1_000_000, "t tonne tonnes")
_unit("lb", 1, "lb lbs pound pounds")
_unit("lb", 1 / 16, "oz ounce ounces")
_unit("l", 0.001, "ml milliliter milliliters millilitre millilitres")
_unit("l", 1, "l liter liters litre litres")
_unit("byte", 1, "b byte bytes")
_unit("byte", 1e3, "kb kilobyte kilobytes")
_unit("byte", 1e6, "mb megabyte megabytes")
_unit("byte", 1e9, "gb gigabyte gigabytes")
_unit("byte", 1e12, "tb terabyte terabytes")
_unit("byte", 1e15, "pb petabyte petabytes")
_unit("ibyte", 1024, "kib")
_unit("ibyte", 1024**2, "mib")
_unit("ibyte", 1024**3, "gib")
_unit("ibyte", 1024**4, "tib")
_unit("bit/s", 1e3, "kbps")
_unit("bit/s", 1e6, "mbps")
_unit("bit/s", 1e9, "gbps")
_unit("hz", 1, "hz")
_unit("hz", 1e3, "khz")
_unit("hz", 1e6, "mhz")
_unit("hz", 1e9, "ghz")
_unit("w", 1, "w watt watts")
_unit("w", 1000, "kw kilowatt kilowatts")
_unit("wh", 1000, "kwh")
_unit("%", 1, "% percent per-cent pct")
_unit("°c", 1, "°c ℃ celsius")
_unit("°f", 1, "°f ℉ fahrenheit")
_unit("x", 1, "x ×")
for _alias in ("mph", "kph", "km/h", "rpm", "fps", "dpi", "px", "mah", "kcal", "cal", "v",
               "mmhg", "mg/dl", "psi", "bar", "db", "nm", "pp"):
    _unit(_alias, 1, _alias)

# Currency markers before or after an amount -> ISO code.
CURRENCY_SYMBOLS = {"$": "usd", "us$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr",
                    "₩": "krw", "₽": "rub", "₺": "try", "₪": "ils", "r$": "brl", "a$": "aud",
                    "c$": "cad", "chf": "chf"}
CURRENCY_WORDS = {
    **{code: code for code in ("usd", "eur", "gbp", "jpy", "cny", "rmb", "inr", "chf", "cad",
                               "aud", "sek", "nok", "dkk", "pln", "brl", "mxn", "krw", "sgd")},
    "dollar": "usd", "dollars": "usd", "euro": "eur", "euros": "eur", "yen": "jpy",
    "yuan": "cny", "rupee": "inr", "rupees": "inr", "francs": "chf", "sterling": "gbp",
}
CENTS = frozenset({"cent", "cents"})

MULTIPLIERS = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "m": 1e6,
               "billion": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12, "tn": 1e12,
               "lakh": 1e5, "crore": 1e7, "mil": 1e6, "millions": 1e6, "billions": 1e9,
               "millones": 1e6, "millions de": 1e6, "milliarden": 1e9, "millionen": 1e6}

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "dozen": 12,
}
SCALE_WORDS = {"hundred": 100, "thousand": 1e3, "million": 1e6, "billion": 1e9,
               "trillion": 1e12}

MONTHS = {
    **dict.fromkeys(("january", "jan", "janvier", "enero", "januar", "gennaio", "janeiro"), 1),
    **dict.fromkeys(("february", "feb", "février", "fevrier", "febrero", "februar",
                     "febbraio", "fevereiro"), 2),
    **dict.fromkeys(("march", "mar", "mars", "marzo", "märz", "marz", "março"), 3),
    **dict.fromkeys(("april", "apr", "avril", "abril", "aprile"), 4),
    **dict.fromkeys(("may", "mai", "mayo", "maggio", "maio"), 5),
    **dict.fromkeys(("june", "jun", "juin", "junio", "juni", "giugno", "junho"), 6),
    **dict.fromkeys(("july", "jul", "juillet", "julio", "juli", "luglio", "julho"), 7),
    **dict.fromkeys(("august", "aug", "août", "aout", "agosto"), 8),
    **dict.fromkeys(("september", "sep", "sept", "septembre", "septiembre", "settembre",
                     "setembro"), 9),
    **dict.fromkeys(("october", "oct", "octobre", "octubre", "oktober", "ottobre",
                     "outubro"), 10),
    **dict.fromkeys(("november", "nov", "novembre", "noviembre", "novembro"), 11),
    **dict.fromkeys(("december", "dec", "décembre", "decembre", "diciembre", "dezember",
                     "dicembre", "dezembro"), 12),
}
WEEKDAYS = {
    **dict.fromkeys(("monday", "lundi", "lunes", "montag"), "mon"),
    **dict.fromkeys(("tuesday", "mardi", "martes", "dienstag"), "tue"),
    **dict.fromkeys(("wednesday", "mercredi", "miércoles", "mittwoch"), "wed"),
    **dict.fromkeys(("thursday", "jeudi", "jueves", "donnerstag"), "thu"),
    **dict.fromkeys(("friday", "vendredi", "viernes", "freitag"), "fri"),
    **dict.fromkeys(("saturday", "samedi", "sábado", "samstag"), "sat"),
    **dict.fromkeys(("sunday", "dimanche", "domingo", "sonntag"), "sun"),
}
RELATIVE_DAYS = {"today": "today", "tomorrow": "tomorrow", "yesterday": "yesterday",
                 "tonight": "today", "aujourd": "today", "demain": "tomorrow",
                 "hoy": "today", "mañana": "tomorrow", "ayer": "yesterday",
                 "heute": "today", "morgen": "tomorrow", "gestern": "yesterday"}

NEGATIONS = _words("not no never none without nothing nobody nowhere neither nor cannot "
                   "nicht kein keine keinen keiner nie niemals ohne jamais pas sans aucun "
                   "aucune nunca sin ningún ninguna ningun nenhum nenhuma sem non")
# Phrases where a negation word does not negate.
NOT_NEGATING = frozenset({("not", "only"), ("not", "just"), ("no", "matter"),
                          ("no", "doubt"), ("not", "necessarily"), ("no", "problem"),
                          ("no", "worries")})
# Words skipped between a negation and the word it negates.
NEGATION_GAP = _words(
    "a an the be been being to any longer more yet have has had do does did is are was "
    "were will would can could should must may might also very really always currently "
    "directly necessarily quite actually even ever at all of in on for it this that these "
    "those there you we they i he she one get got le la les un une de du des el los las "
    "der die das ein eine einen es est sont ist sind")

# Words whose swap turns a statement around ("closed" / "open"), and prefixes that
# negate the word they precede ("available" / "unavailable").
ANTONYMS: tuple[tuple[str, str], ...] = tuple(
    (pair.split("/")[0], pair.split("/")[1]) for pair in sorted(_words(
        "open/closed increase/decrease increased/decreased rise/fall rose/fell before/after "
        "above/below true/false enabled/disabled enable/disable allow/deny allowed/forbidden "
        "accept/reject accepted/rejected minimum/maximum min/max ascending/descending "
        "higher/lower more/less larger/smaller bigger/smaller faster/slower earlier/later "
        "first/last north/south east/west positive/negative success/failure "
        "succeeded/failed pass/fail passed/failed include/exclude included/excluded "
        "inside/outside always/never required/optional mandatory/optional public/private "
        "online/offline win/lose won/lost buy/sell gain/loss profit/loss cheap/expensive "
        "early/late inclusive/exclusive synchronous/asynchronous sync/async upper/lower "
        "uppercase/lowercase increment/decrement encrypt/decrypt compress/decompress "
        "visible/hidden better/worse best/worst highest/lowest likely/unlikely "
        "ordered/unordered ouvert/fermé vrai/faux abierto/cerrado offen/geschlossen")))
NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "non", "non-", "dis")
FUNCTION_WORDS = _words(
    "a an the and or but so nor yet for of to in on at by with from as into onto upon "
    "about over under than then that this these those there here it its it's is are was "
    "were be been being am do does did have has had having will would shall should can "
    "could may might must not no i me my we us our you your he him his she her they them "
    "their which who whom whose what when where why how if also just very really quite "
    "too only even still already such some any each every all both either other another "
    "one ones le la les un une de du des et ou en au aux el los las y o del der die das "
    "und oder ein eine einen ist sind es")

YES = _words("yes yeah yep yup oui sí si ja sim да")
NO = _words("no nope nah non nein não нет")
SOFT_YES = _words("sure certainly absolutely definitely indeed correct exactly")
CJK_YES = ("是的", "是", "对", "はい")
CJK_NO = ("不是", "不", "いいえ")

# Capitalised words at a sentence start that are ordinary words, not names. A name at a
# sentence start ("Paris is ...") is still a fact; "Restart the service" is not.
COMMON_STARTERS = _words("""
a about above according across actually add additionally after afterwards again against
all almost along also alternatively although always among an and another any anyway
apply are as ask at avoid back be because before begin below besides best better between
both but by call can change check choose click close combine compare configure confirm
consider continue copy could create currently define delete depending deploy despite
did disable do does don't double download during each edit either else enable ensure
enter even eventually every everything example examples except finally find first fix
follow following for from further generally get give go good great has have having he
her here hers high him his how however i if imagine important in include including
increase initially insert install instead is it its just keep know last later less let
like likely look low make many may maybe meanwhile more moreover most mostly move much
my navigate near need never new next no nor not note now of off often ok okay on once
one only open or other otherwise our out over overall perhaps place please plus
possibly prefer press provide put rather read really recently reboot remember remove
replace restart review right run save second see select set setting she should similarly
simply since so some none nothing nobody neither store switch scroll refer
sometimes soon specifically start step still stop such summary
suppose sure take tap test that the their them then there therefore these they third
this those though thus to today together too try turn type typically under unfortunately
unless unlike until up update upgrade upload usually use using verify very wait want
was we well were what whatever when whenever where whereas wherever whether which while
who whoever whom whose why will with within without would write yes yet you your yours
answer result results option options tip tips warning caution error solution reason
reasons overview background conclusion explanation details detail notes method approach
pros cons advantages disadvantages benefits drawbacks input output returns return
instructions requirements prerequisites usage syntax parameters arguments description
certainly absolutely definitely indeed correct exactly great sorry thanks thank hope
hello hi hey dear le la les un une des il elle ils nous vous ce cette el los las una
der die das ein eine es ist sie wir
""")
STARTER_SUFFIXES = ("ly", "ing", "ed", "tion", "sion", "ment", "ness", "ity", "ize",
                    "ise", "ful", "less", "able", "ive")

REFUSALS = re.compile(
    r"\b(?:i|we)(?:'m| am| are)? (?:sorry|afraid)\b[^.!?\n]{0,80}\b(?:can(?:'|no)t|unable|"
    r"won't|not able)\b"
    r"|^(?:sorry|i apologi[sz]e)\b[^.!?\n]{0,30}\b(?:i|we) (?:can(?:'|no)t|won't|will not|"
    r"am unable|'m unable|am not able|'m not able)\b"
    r"|\b(?:i|we)(?: can(?:'|no)t| won't| will not|(?:'m| am| are) (?:unable|not able|not "
    r"allowed|not permitted) to) (?:help|assist|provide|comply|fulfil|fulfill|do that|do this|"
    r"answer|share|support|create|generate|write|engage|continue|discuss)\b"
    r"|\bi must (?:decline|refuse)\b|\bas an ai\b|\bagainst (?:my|our) (?:guidelines|policies|"
    r"policy|usage polic)"
    r"|\b(?:lo siento|no puedo ayudar|je ne peux pas|désolé|es tut mir leid|ich kann (?:dir |"
    r"ihnen )?(?:dabei |damit )?nicht helfen|non posso aiutar|não posso ajudar)"
    r"|抱歉|无法(?:提供|协助|帮助)|不能(?:提供|协助|帮助)|申し訳|お手伝いできません",
    re.IGNORECASE)
# One of these is in every text REFUSALS matches: a cheap test before the expression.
REFUSAL_HINTS = ("sorry", "afraid", "apologi", "can't", "cannot", "won't", "will not",
                 "unable", "not able", "not allowed", "not permitted", "decline", "refuse",
                 "as an ai", "against", "siento", "puedo", "peux", "désolé", "desole", "leid",
                 "nicht helfen", "posso", "抱歉", "无法", "不能", "申し訳", "できません")
HEDGES = re.compile(r"\b(?:but|however|that said|although|here(?:'s| is| are))\b", re.I)

COURTESY = re.compile(
    r"let me know|hope (?:this|that|it) helps|feel free to|happy to help|(?:any|more|further|"
    r"other) questions|anything else|glad (?:i|to) (?:could )?help|good luck|happy coding|"
    r"^cheers|hope you|^enjoy|have a (?:great|nice|good)|don't hesitate|i(?:'m| am) here "
    r"(?:to help|if)|just ask|would you like (?:me|more)|want me to|shall i",
    re.IGNORECASE)
# One of these is in every sentence COURTESY matches (lower case): a cheap test first.
COURTESY_HINTS = ("let me", "hope", "feel free", "happy", "question", "anything else",
                  "glad", "luck", "cheers", "enjoy", "have a ", "hesitate", "here to",
                  "here if", "just ask", "would you like", "want me", "shall i")
LEADING_FILLER = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|absolutely|great question|good question|happy to help|"
    r"okay|ok|alright|glad you asked|thanks for (?:asking|your question|the question)"
    r"|thank you for (?:asking|your question)|i'd be (?:happy|glad) to help"
    r"|(?:that's|what) a (?:great|good) question)\s*[!.,:—–-]+\s*)+", re.IGNORECASE)
