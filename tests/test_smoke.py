from tests.conftest import cards_of, texts_of


async def test_health_and_a_first_touch(console):
    response = await console.client.get("/healthz")
    assert response.status == 200
    reply = await console.send("rep.li", "华东建材 电话10分钟 聊了需求,明天发方案")
    print(texts_of(reply))
    card = cards_of(reply)[0]
    reply = await console.click("rep.li", card, card["buttons"][0]["label"])
    print(texts_of(reply))
    assert any("已记录跟进" in t for t in texts_of(reply))
