"""The labeler page warns, while the labeler types, that a comment holds personal information
(the server's curation.pii patterns, run by textrules.js), names the kind, and marks submit not
ready; ordinary numbers (prices, times, years) raise nothing."""
from __future__ import annotations

import re

import pytest

from tests.browser.test_labeler_browser import PHONE, make_project, not_ready, wait_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_page_warns_before_submit_about_personal_information(new_page, users, source, login, shot):
    project = make_project(users, source, photos=2, cap=2, seed=1200)
    page = new_page(viewport=PHONE)
    login(page, "labeler1")
    page.goto(f"/label/{project.pk}/")
    page.wait_for_url(re.compile(rf"/label/{project.pk}/$"))
    wait_photo(page)

    page.fill("#ct-reaction", "떡볶이 12,000원 실화냐")
    page.fill("#ct-specific", "2024년 5월 3일 3시 30분에 먹었는데 국물이 진해요")
    page.locator("#ct-specific").blur()
    assert page.locator(".rule-msgs li").count() == 0
    assert not not_ready(page)

    page.fill("#ct-specific", "사장님 계좌 국민은행 123456-01-123456 이고 집은 서울 강남구 테헤란로 123 이에요")
    warning = page.locator('#ct-specific-msgs li[data-code="personal_info"]')
    assert warning.count() == 1
    text = warning.inner_text()
    assert ("계좌" in text or "bank account" in text) and ("주소" in text or "street address" in text), text
    assert not_ready(page)
    page.locator("#ct-specific").blur()
    shot(page, "label-personal-info-phone")

    # Korean digit words and full-width digits are phone numbers too.
    page.fill("#ct-reaction", "연락 공일공 일이삼사 오육칠팔")
    assert page.locator('#ct-reaction-msgs li[data-code="phone"]').count() == 1
    page.fill("#ct-reaction", "연락 ０１０－１２３４－５６７８")
    assert page.locator('#ct-reaction-msgs li[data-code="phone"]').count() == 1
