"""The Django middleware's shortcuts give what the plain Django calls give."""

from __future__ import annotations

from django.test import RequestFactory

from ainisa_middleware.django.middleware import replace_request_data


def test_replacing_the_data_parses_no_query_string_and_reads_utf8() -> None:
    request = RequestFactory().post(
        "/chat?user_id=42&page=%C3%A9",
        b"message=hi",
        content_type="application/x-www-form-urlencoded; charset=latin-1",
    )
    request.encoding = "latin-1"
    assert request.GET["page"] == "Ã©"  # parsed and cached with the old encoding

    replace_request_data(request, b"message=hi", "page=%C3%A9")

    assert request.encoding == "utf-8"
    assert "GET" not in request.__dict__  # dropped, and not parsed again meanwhile
    assert request.GET.dict() == {"page": "é"}
    assert request.POST.dict() == {"message": "hi"}
