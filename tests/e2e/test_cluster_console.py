"""The cluster page: the node serving the console, alive, with the work it holds."""

from __future__ import annotations

from playwright.sync_api import expect


def test_a_monitor_sees_the_nodes_and_their_work(live_gateway, console_page) -> None:
    live = live_gateway
    node = live.services.config.gateway.node_id
    page = console_page(live, "watcher", "monitor")
    page.locator("#nav").get_by_role("link", name="Cluster").click()
    card = page.locator(f'section.cluster-node[data-node="{node}"]')
    expect(card).to_have_attribute("data-alive", "1")
    expect(card.locator("h2")).to_contain_text("alive")
    expect(card.locator("h2")).to_contain_text("this node")
    # one node holds everything: the tracker partitions and the singleton jobs
    expect(card.locator('tr[data-lease="singleton:alert-escalation"]')).to_contain_text("Job")
    partitions = live.services.config.cluster.tracker_partitions
    expect(card.locator('tr[data-lease^="trackers:"]')).to_have_count(partitions)
    expect(page.locator("section.cluster-unowned")).to_contain_text("Every piece of work has a live owner.")


def test_the_cluster_page_in_chinese(live_gateway, console_page) -> None:
    live = live_gateway
    page = console_page(live, "zhiban", "monitor", lang="zh-CN")
    page.locator("#nav").get_by_role("link", name="集群").click()
    expect(page.locator("#page-title")).to_have_text("集群")
    card = page.locator("section.cluster-node").first
    expect(card.locator("h2")).to_contain_text("在线")
    expect(card).to_contain_text("定位终端分区")
