#!/usr/bin/env python3
"""Writes N generated members as CSV (UTF-8, or GBK with --gbk) for `memberd import`
benchmarks, with the mapping file beside it. Deterministic: the same N gives the same file.

    python3 loadtest/gen-members.py 1000000 /tmp/members.csv
"""
import argparse, random

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂"
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "成都", "南京", "武汉"]
TAGS = ["vip", "new", "wechat", "app", "student", "family", "campaign:2026-11"]

MAPPING = """encoding = "{encoding}"
tag_separator = "|"

[fields]
member_id = "会员编号"
name = "姓名"
gender = "性别"
birthday = "生日"
phone = "手机"
email = "邮箱"
id_number = "身份证号"
store = "开卡门店"
consent_sms = "短信营销"
tags = "标签"

[attributes]
city = "城市"

[values.gender]
"男" = "m"
"女" = "f"
"""


def id_number(rng, n):
    # Birth date and sequence repeat every 63,000 rows (the lcm of 45, 12, 28 and 1000), so the
    # region code moves on by one each time round: unique up to 63 million rows.
    region = 110101 + n // 63000
    body = "%06d%04d%02d%02d%03d" % (region, 1960 + n % 45, 1 + n % 12, 1 + n % 28, n % 1000)
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
    return body + check


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("count", type=int)
    ap.add_argument("path")
    ap.add_argument("--gbk", action="store_true")
    args = ap.parse_args()
    rng = random.Random(42)
    encoding = "gbk" if args.gbk else "utf-8"
    with open(args.path, "w", encoding=encoding, newline="") as out:
        out.write("会员编号,姓名,性别,生日,手机,邮箱,身份证号,开卡门店,短信营销,标签,城市\n")
        for n in range(args.count):
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
            phone = "13%09d" % n
            tags = "|".join(rng.sample(TAGS, rng.randint(0, 2)))
            out.write(
                f"M{n:08d},{name},{rng.choice('男女')},{1960 + n % 45}-{1 + n % 12:02d}-{1 + n % 28:02d},"
                f"{phone},u{n}@example.cn,{id_number(rng, n)},S{n % 500:03d},{n % 2},{tags},"
                f"{rng.choice(CITIES)}\n"
            )
    with open(args.path + ".mapping.toml", "w", encoding="utf-8") as m:
        m.write(MAPPING.format(encoding=encoding))


if __name__ == "__main__":
    main()
