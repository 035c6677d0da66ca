"""Regenerate the sample files (deterministic); compressed with the real gzip and zip tools."""

from __future__ import annotations

import csv
import random
import subprocess
from pathlib import Path

HERE = Path(__file__).parent
CITIES = [("Toronto", "CA"), ("Lyon", "FR"), ("Osaka", "JP"), ("Austin", "US"), ("Porto", "PT"),
          ("Leeds", "GB"), ("Graz", "AT"), ("Cork", "IE"), ("Perth", "AU"), ("Recife", "BR")]
NAMES = ["Ada", "Grace", "Linus", "Ken", "Barbara", "Edsger", "Donald", "Frances", "Alan", "Margaret"]
HEADER = ["Order Id", "Customer", "E-mail", "City", "Country", "Amount", "Quantity", "Order Date",
          "Status", "Note"]


def rows(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for number in range(1, count + 1):
        name = rng.choice(NAMES)
        city, country = rng.choice(CITIES)
        note = rng.choice(["", "gift wrap", 'said "urgent"', "leave at door, ring twice", ""])
        out.append([str(number), f"{name} {chr(65 + number % 26)}.", f"{name.lower()}{number}@example.com",
                    city, country, f"{rng.uniform(1, 500):.2f}", str(rng.randint(1, 12)),
                    f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    rng.choice(["paid", "shipped", "refunded"]), note])
    return out


def write_csv(path: Path, data: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(data)


def main() -> None:
    write_csv(HERE / "orders.csv", rows(20_000, seed=1))
    subprocess.run(["gzip", "-9", "-n", "-f", str(HERE / "orders.csv")], check=True)
    small = HERE / "orders_march.csv"
    write_csv(small, rows(500, seed=2))
    (HERE / "orders_march.zip").unlink(missing_ok=True)
    subprocess.run(["zip", "-q", "-j", "-X", str(HERE / "orders_march.zip"), str(small)], check=True)
    small.unlink()
    bad = rows(200, seed=3)
    bad[41][5] = "n/a"            # amount that is not a number
    bad[99][6] = "-3"             # a negative quantity
    bad[150][5] = ""              # a missing amount
    write_csv(HERE / "orders_with_bad_rows.csv", bad)
    with (HERE / "words.txt").open("w") as f:
        for word in ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"] * 125:
            f.write(word + "\n")


if __name__ == "__main__":
    main()
