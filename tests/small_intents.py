"""A realistic small-data intents document: 150 intents with 1 to 3 patterns each, some in Bengali and Vietnamese.

Real intents.json files look like this: many intents, few patterns, tags that are whole questions, words shared
between intents ("library hours", "library fees", "gym hours"), and other languages. Built from fixed word lists
with a seeded shuffle, so every run gets the same file. Used by tests/test_real_files.py and benchmarks/small_data.py.
"""

from __future__ import annotations

import random

PLACES = [
    "library",
    "gym",
    "cafeteria",
    "parking garage",
    "dormitory",
    "computer lab",
    "bookstore",
    "health clinic",
    "swimming pool",
    "registrar office",
    "career center",
    "chapel",
    "art studio",
]
ASPECTS = {
    "hours": ["when is the {p} open", "{p} opening hours", "what time does the {p} close"],
    "location": ["where is the {p}", "how do I find the {p}", "{p} address"],
    "fees": ["how much does the {p} cost", "{p} fees", "is there a charge for the {p}"],
    "contact": ["phone number of the {p}", "how can I contact the {p}", "email for the {p}"],
    "rules": ["what are the {p} rules", "{p} policy", "am I allowed to bring food into the {p}"],
    "booking": ["can I reserve a room at the {p}", "book a slot in the {p}", "{p} reservation"],
    "staff": ["who runs the {p}", "{p} manager name", "can I talk to someone at the {p}"],
    "wifi": ["wifi password for the {p}", "does the {p} have internet", "{p} wireless network"],
    "jobs": ["are there student jobs at the {p}", "work at the {p}", "{p} hiring"],
    "lost": ["I lost my keys at the {p}", "{p} lost and found", "did anyone find a wallet in the {p}"],
}
BENGALI = {  # tag -> patterns; tags in Bengali script, patterns with vowel signs and viramas (combining marks)
    "লাইব্রেরি কখন খোলে?": ["লাইব্রেরি কখন খোলে", "লাইব্রেরির সময়সূচি", "লাইব্রেরি খোলা আছে কি"],
    "ভর্তি ফি": ["ভর্তি ফি কত", "ভর্তির খরচ কত টাকা"],
    "পরীক্ষার ফলাফল": ["পরীক্ষার ফলাফল কবে দেবে", "ফলাফল কোথায় দেখব", "আমার রেজাল্ট"],
    "হোস্টেল": ["হোস্টেলে সিট পাওয়া যাবে কি"],
    "বৃত্তি": ["বৃত্তির জন্য আবেদন করব কীভাবে", "স্কলারশিপ আছে কি"],
    "শুভেচ্ছা": ["নমস্কার", "শুভ সকাল", "কেমন আছেন"],
    "ধন্যবাদ": ["ধন্যবাদ", "অনেক ধন্যবাদ আপনাকে"],
    "বাসের সময়": ["বাস কখন ছাড়বে", "ক্যাম্পাসের বাসের সময়সূচি"],
    "ক্যান্টিনের খাবার": ["ক্যান্টিনে আজ কী খাবার আছে"],
    "বিদায়": ["বিদায়", "আবার দেখা হবে", "ভালো থাকবেন"],
}
VIETNAMESE = {
    "giờ mở cửa thư viện": ["thư viện mở cửa lúc mấy giờ", "giờ mở cửa của thư viện", "thư viện đóng cửa khi nào"],
    "học phí": ["học phí bao nhiêu tiền", "đóng học phí ở đâu"],
    "kết quả thi": ["khi nào có kết quả thi", "xem điểm thi ở đâu", "điểm của tôi"],
    "ký túc xá": ["đăng ký ký túc xá như thế nào"],
    "học bổng": ["làm sao để xin học bổng", "có học bổng cho sinh viên mới không"],
    "chào hỏi": ["xin chào", "chào bạn", "chào buổi sáng"],
    "cảm ơn": ["cảm ơn", "cảm ơn bạn nhiều lắm"],
    "xe buýt": ["xe buýt của trường chạy lúc mấy giờ", "lịch xe buýt"],
    "căn tin": ["căn tin hôm nay có món gì"],
    "tạm biệt": ["tạm biệt", "hẹn gặp lại"],
}
N_INTENTS = 150


def small_intents_document(seed: int = 0) -> dict:
    """{"intents": [...]}: 130 English intents (13 places × 10 aspects) plus 10 Bengali and 10 Vietnamese ones."""
    rng = random.Random(seed)
    intents = []
    for place in PLACES:
        for aspect, templates in ASPECTS.items():
            chosen = rng.sample(templates, rng.randint(1, 3))
            tag = f"{place}: {aspect}" if rng.random() < 0.7 else templates[0].format(p=place).capitalize() + "?"
            intents.append(
                {"tag": tag, "patterns": [t.format(p=place) for t in chosen], "responses": [f"About {tag}: ..."]}
            )
    for tag, patterns in (BENGALI | VIETNAMESE).items():
        intents.append({"tag": tag, "patterns": list(patterns), "responses": [f"{tag} …"]})
    rng.shuffle(intents)
    assert len(intents) == N_INTENTS
    return {"intents": intents}
