"""The officer list as the real service answers it, over loopback.

Zero appointments (200, not 404), 404 only without metrics or without an officers link, ceased
companies' officers inactive without ``resigned_on``, counts that lag the items, the default page.
"""

from __future__ import annotations

import json

import pytest

from eventlog.simulator import CEASED_STATUSES
from support.ch_simulator import REST, simulator


EMPTY_ORDER = ["total_results", "items", "active_count", "inactive_count", "resigned_count",
               "kind", "start_index", "items_per_page", "links", "etag"]


def empty_page(start: int, per_page: int) -> dict:
    return {"total_results": 0, "items": [], "active_count": 0, "inactive_count": 0,
            "resigned_count": 0, "kind": "officer-list", "start_index": start,
            "items_per_page": per_page, "links": {}, "etag": ""}


async def get(session, url: str) -> tuple[int, bytes]:
    async with session.get(url, headers=REST) as response:
        return response.status, await response.read()


async def test_a_company_with_no_appointments_is_200_with_an_empty_list() -> None:
    async with simulator(seed=1, zero_officer_share=0.2, no_officers_link_share=0.0) as (sim, session):
        universe = sim.simulator.universe
        empty = [n for n in universe.numbers[:200] if universe.quirks(n).zero_officers]
        assert len(empty) > 10
        number = empty[0]
        assert universe.officers(number) == ()
        assert "officers" in json.loads((await get(session, f"/company/{number}"))[1])["links"]
        status, body = await get(session, f"/company/{number}/officers")
        assert status == 200
        assert json.loads(body) == empty_page(0, 35)
        assert list(json.loads(body)) == EMPTY_ORDER  # and in the service's order
        status, body = await get(session, f"/company/{number}/officers?start_index=5&items_per_page=10")
        assert (status, json.loads(body)) == (200, empty_page(5, 10))


async def test_a_page_past_the_end_is_the_same_empty_answer_with_zero_counts() -> None:
    async with simulator(seed=2, lagging_counts_share=0.0) as (sim, session):
        universe = sim.simulator.universe
        number = next(n for n in universe.numbers if 2 <= len(universe.officers(n)) <= 6)
        status, body = await get(session, f"/company/{number}/officers?start_index=35")
        assert (status, json.loads(body)) == (200, empty_page(35, 35))
        status, body = await get(session, f"/company/{number}/officers")
        assert json.loads(body)["total_results"] == len(universe.officers(number))


async def test_404_only_when_the_metrics_are_missing_for_a_company_with_appointments() -> None:
    async with simulator(seed=3, metrics_missing_share=1.0, zero_officer_share=0.1,
                         no_officers_link_share=0.0) as (sim, session):
        universe = sim.simulator.universe
        staffed = next(n for n in universe.numbers if universe.officers(n))
        status, body = await get(session, f"/company/{staffed}/officers")
        assert (status, body) == (404, b"")  # the service's 404 has no body
        unstaffed = next(n for n in universe.numbers if not universe.officers(n))
        status, body = await get(session, f"/company/{unstaffed}/officers")
        assert (status, json.loads(body)) == (200, empty_page(0, 35))
        assert sim.state.statuses() == [404, 200]

    async with simulator(seed=3) as (sim, session):  # off by default
        assert sim.simulator.config.metrics_missing_share == 0.0
        status, _ = await get(session, f"/company/{staffed}/officers")
        assert status == 200


async def test_a_profile_without_an_officers_link_has_nothing_to_list() -> None:
    async with simulator(seed=4, no_officers_link_share=0.3) as (sim, session):
        universe = sim.simulator.universe
        unlinked = [n for n in universe.numbers[:100] if universe.quirks(n).no_officers_link]
        assert len(unlinked) > 10
        for number in unlinked[:3]:
            status, body = await get(session, f"/company/{number}")
            links = json.loads(body)["links"]
            assert status == 200 and "officers" not in links
            assert set(links) == {"filing_history", "persons_with_significant_control", "self"}
            assert await get(session, f"/company/{number}/officers") == (404, b"")
        linked = next(n for n in universe.numbers if not universe.quirks(n).no_officers_link)
        status, body = await get(session, f"/company/{linked}")
        assert json.loads(body)["links"]["officers"] == f"/company/{linked}/officers"


@pytest.mark.parametrize("status", sorted(CEASED_STATUSES))
async def test_officers_of_ceased_companies_are_inactive_without_resigned_on(status: str) -> None:
    shares = {"dissolved": "dissolved_share", "closed": "closed_share",
              "converted-closed": "converted_closed_share"}
    knobs = {"dissolved_share": 0.0, "closed_share": 0.0, "converted_closed_share": 0.0,
             shares[status]: 0.5, "zero_officer_share": 0.0, "no_officers_link_share": 0.0,
             "lagging_counts_share": 0.0}
    async with simulator(seed=5, **knobs) as (sim, session):
        universe = sim.simulator.universe
        ceased = [n for n in universe.numbers if universe.profile(n).company_status == status]
        # one whose officers include some never resigned (the trap) and some resigned
        number = next(
            n for n in ceased
            if any(o.resigned_on is None for o in universe.officers(n))
            and any(o.resigned_on for o in universe.officers(n))
        )
        profile = json.loads((await get(session, f"/company/{number}"))[1])
        assert profile["company_status"] == status and profile["can_file"] is False
        ceased_on = profile["date_of_cessation"]
        page = json.loads((await get(session, f"/company/{number}/officers?items_per_page=100"))[1])
    never_resigned = [o for o in page["items"] if "resigned_on" not in o]
    resigned = [o for o in page["items"] if "resigned_on" in o]
    assert never_resigned and resigned
    assert page["active_count"] == 0  # nobody is current, although no resigned_on says so
    assert page["inactive_count"] == len(never_resigned)
    assert page["resigned_count"] == len(resigned)
    assert page["total_results"] == len(page["items"])
    # every appointment began (and ended, if it did) before the company ceased
    assert all(o["appointed_on"] <= ceased_on for o in page["items"])
    assert all(o["resigned_on"] <= ceased_on for o in resigned)


async def test_an_active_company_counts_its_officers_as_active() -> None:
    async with simulator(seed=5, lagging_counts_share=0.0, zero_officer_share=0.0) as (sim, session):
        universe = sim.simulator.universe
        number = next(n for n in universe.numbers
                      if universe.profile(n).company_status == "active"
                      and any(o.resigned_on for o in universe.officers(n)))
        page = json.loads((await get(session, f"/company/{number}/officers?items_per_page=100"))[1])
    current = sum("resigned_on" not in o for o in page["items"])
    assert (page["active_count"], page["inactive_count"]) == (current, 0)
    assert page["resigned_count"] == len(page["items"]) - current


async def test_counts_that_lag_the_items_in_both_directions() -> None:
    async with simulator(seed=6, lagging_counts_share=1.0, zero_officer_share=0.0,
                         no_officers_link_share=0.0) as (sim, session):
        universe = sim.simulator.universe
        for number in universe.numbers[:40]:
            real = len(universe.officers(number))
            lag = universe.quirks(number).count_lag
            assert lag != 0
            page = json.loads((await get(session, f"/company/{number}/officers?items_per_page=100"))[1])
            assert len(page["items"]) == real  # the items are the truth ...
            assert page["total_results"] == max(real + lag, 0)  # ... the counts are not
            assert page["total_results"] == (
                page["active_count"] + page["inactive_count"] + page["resigned_count"]
            )
        # fewer counted than listed, across a page boundary: paging on total_results would stop
        # after page 1 and lose officers that page 2 still serves
        short = next(n for n in universe.numbers
                     if universe.quirks(n).count_lag < 0
                     and len(universe.officers(n)) + universe.quirks(n).count_lag <= 35
                     < len(universe.officers(n)))
        first = json.loads((await get(session, f"/company/{short}/officers"))[1])
        assert len(first["items"]) == 35 and first["total_results"] <= 35
        second = json.loads((await get(session, f"/company/{short}/officers?start_index=35"))[1])
        assert second["items"] and second["total_results"] > 0
        assert 35 + len(second["items"]) == len(universe.officers(short))
        # more counted than listed: the page after the last item is empty, with zero counts
        long = next(n for n in universe.numbers
                    if universe.quirks(n).count_lag > 0 and len(universe.officers(n)) <= 35)
        real = len(universe.officers(long))
        first = json.loads((await get(session, f"/company/{long}/officers"))[1])
        assert first["total_results"] > real == len(first["items"])
        after = json.loads((await get(session, f"/company/{long}/officers?start_index={real}"))[1])
        assert after == empty_page(real, 35)


async def test_the_default_page_is_35_items_and_at_most_100() -> None:
    async with simulator(seed=7) as (sim, session):
        universe = sim.simulator.universe
        number = next(n for n in universe.numbers if len(universe.officers(n)) > 35)
        page = json.loads((await get(session, f"/company/{number}/officers"))[1])
        assert (len(page["items"]), page["items_per_page"], page["start_index"]) == (35, 35, 0)
        assert list(page) == EMPTY_ORDER  # a full page keeps the same order
        assert page["links"] == {"self": f"/company/{number}/officers"} and page["etag"]
        capped = json.loads((await get(session, f"/company/{number}/officers?items_per_page=500"))[1])
        assert capped["items_per_page"] == 100
        assert len(capped["items"]) == len(universe.officers(number))
