"""What the stop-payment hand-off reads from a victim's words, without a database."""
from __future__ import annotations

from datetime import timedelta

from sampledata import city
from services.dispatch.domain import RetryPolicy, account_named, amount_fen, banks_named, mask_account, yuan


def test_amounts_in_chinese_and_arabic_numerals_in_fen():
    assert amount_fen("用手机银行分三笔转了八万六千元") == 8_600_000
    assert amount_fen("一共转了两万三千元，前几单返了几十块钱") == 2_300_000
    assert amount_fen("转了十五万元到他指定的银行账户") == 15_000_000
    assert amount_fen("往一个银行卡里转三万块手术费") == 3_000_000
    assert amount_fen("转账12,500元") == 1_250_000 and amount_fen("转了1.5万元") == 1_500_000
    assert amount_fen("被骗了但是不知道多少钱") == 0


def test_every_sample_fraud_report_names_an_amount():
    frauds = [r for r in city.sample_reports() if r["expected_incident_type"] == "TELECOM_FRAUD"]
    assert frauds and all(amount_fen(r["description"]) > 0 for r in frauds)


def test_banks_and_accounts_named_by_the_victim():
    assert banks_named("我用支付宝和建设银行卡一共转了两万三千元") == ["中国建设银行", "支付宝"]
    assert banks_named("中国建设银行") == ["中国建设银行"], "not also 中国银行"
    assert banks_named("打了我一顿") == []
    assert account_named("卡号6222020200112233445，转了") == "6222020200112233445"
    assert account_named("电话13800138000") == ""


def test_money_in_words_and_the_retry_schedule():
    assert yuan(8_600_000) == "8.6万元" and yuan(15_000) == "150元"
    assert mask_account("6222020200112233445") == "***************3445" and mask_account("") == ""
    policy = RetryPolicy(base_seconds=1, cap_seconds=30)
    assert [policy.retry_delay(n).total_seconds() for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.check_delay(1) == timedelta(seconds=policy.result_check_seconds)
