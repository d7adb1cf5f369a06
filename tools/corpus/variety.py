"""More ways customers write: terse and colloquial phrasings, one-word hinges between intents,
multi-clause messages that mention a settled side topic, English and pinyin, more typos, more
context-dependent dialogues. Same template mini-language as lexicon.py ([a|b] alternatives,
{slot}s). Written from the intent definitions of docs/datasets.md, never from the test split.
"""

# ---------------------------------------------------------------- terse / colloquial
# What people type in a hurry: a few characters, spoken forms, dialect-ish particles.
TERSE = {
    "return_request": ["退[货|掉][吧|呗]", "[我|]要退[货|]", "退货退款", "[想|]退了[它|]", "退[货|]咋[弄|整|搞]",
                       "退回去[吧|得了|]", "[这{unit}|它]不要了[退|给退]了", "[七天|7天]无理由[哈|，能退不]",
                       "给退不", "退货[，急|，快点]", "[东西|{p}]退了得了", "这[个|{unit}]咋退",
                       "退[货|][地址|运费][呢|？]", "[不合适|不喜欢]，退"],
    "exchange_request": ["换[货|个码|个色][吧|呗]", "[要|想]换[个|][大|小]的", "换{sz2}", "换个新的[呗|吧|]",
                         "[码|尺码|颜色]不对[，换|换一下|要换]", "能换不", "换{c2}[的|]行不",
                         "[给|帮]换[一下|下][呗|吧|]", "[不退|不要退]，换", "换货咋弄", "换[一{unit}|个]好的"],
    "refund_status": ["[钱|退款][呢|咋还没到|到哪了]", "退款[呢|好了没|到了没]", "退的钱[呢|咋还没来]",
                      "[查|看]下退款", "退款[几天|多久]到", "[钱|款][啥时候|多会儿][退|回来]",
                      "退款[还没到|还没回来|还是没到账][啊|呢|]", "退[了|完]货[钱|款]呢"],
    "order_status": ["[查|看][下|一下]订单", "订单[啥|什么]状态", "[单子|订单]{ord}[呢|？|咋样了]",
                     "[下单|付款]成功了[没|吗]", "[订单|单子]咋[没了|关了|取消了]", "发货了没[呀|啊|]",
                     "[我的|]单[子|]怎么样了", "[订单|单]处理了[没|吗]", "预售[啥时候|哪天]发"],
    "logistics_tracking": ["[快递|物流|包裹][呢|到哪了|咋样了]", "查[下|一下][物流|快递][呗|吧|]",
                           "[单号|快递单号][多少|呢|发我]", "[物流|快递]不动了", "[快递|包裹][丢了|没了]？",
                           "[显示|说]签收了[我|但]没收到", "[快递|东西]到哪[儿|]了", "[咋|怎么]还在{city}",
                           "物流[几天|好几天]没[更新|动]", "[快递|包裹]被[谁|人]签了"],
    "urge_delivery": ["[快|赶紧]发[货|][啊|吧|！]", "催[下|一下][发货|]", "[咋|怎么]还不发[货|][啊|]",
                      "发[货|]啊[！|！！|]", "[今天|明天]能发不", "加急[发|发货]", "[还不发|不发]货？",
                      "[赶紧|快点]发出来", "[都|]{days}了[还不发|没发]"],
    "cancel_order": ["取消[订单|][吧|！|]", "[不要|不买]了[，|]取消", "[这单|单子][取消|撤了|作废]",
                     "[帮|给]我取消[了|一下|]", "取消[咋|怎么]弄", "[别|不用]发了[，取消吧|]",
                     "[撤|退]单", "[拍|买]错了[，|]取消"],
    "change_address": ["改[个|下][地址|收货地址]", "地址[错了|不对][，改|要改|]", "[换|改]个地址[吧|呗]",
                       "[电话|手机号][错了|改一下]", "[收件人|收件人名字]写错[啦|了，改下]", "[改送|送到|寄到]{compound}",
                       "地址改成{addr}", "[能|可以]改地址不"],
    "invoice_request": ["[开|要][个|张][发票|票][吧|呗|]", "发票[呢|！|？]", "开票[咋|怎么]弄", "[专票|普票]能开不",
                        "[要|补][张|个]发票", "发票[在哪|咋]下载", "[抬头|发票]开错了", "[给|帮]开张票"],
    "payment_issue": ["[付不了|付不上|支付不了]款[啊|呀]", "[扣了两次|扣两遍][钱|]", "[付款|支付]失败",
                      "钱扣了[单|订单]没[有|了|生成]", "[咋|怎么]付不了", "[能|可以]{pay}[付|付款]不",
                      "[莫名|平白无故]扣了[钱|{amt}]", "[付款|支付]页面卡[住|死]了"],
    "product_inquiry": ["有货[吗|没|不]", "[啥|什么]材质", "[保修|质保]多久", "{p}有{c}[的|]不",
                        "[正品|真的]吗", "[码|尺码]准不", "[这个|]{p}[好用吗|耐用不|咋样]", "[多大|多重|多长]",
                        "[几号|什么时候]补货", "{h}穿[多大|啥码]", "[能|可以]机洗不"],
    "complaint": ["我要投诉[你们|这家店][！|！！|]", "[什么|啥][破|烂]服务", "[太|真][坑|坑人]了[吧|]", "[给个|必须给个]说法",
                  "[差评|我要差评][！|]", "[骗子|黑店][！|]", "举报[你们|]", "[态度|服务]太差了[，投诉|]",
                  "[要|我要]赔偿"],
    "coupon_promotion": ["[有|]券[吗|没|不]", "[有|]优惠[吗|没|不]", "[能|]便宜点[吗|不|呗]", "[券|优惠券][用不了|咋用]",
                         "满减[呢|没减|咋不减]", "[降价|便宜]了[补差价|能价保]不", "[包邮|免邮]不",
                         "[有|]赠品[吗|没]", "[新人|首单]券[呢|在哪]"],
    "human_agent": ["[人工|人工客服][！|！！|呢|]", "[找|要][个|]真人[来|聊]", "[转|转个]人工[啊|吧]",
                    "[别|不要]机器人", "[叫|喊][个|]人[来|过来]", "[客服电话|电话]多少", "[真人|人工]呢"],
    "other": ["[嗯|嗯嗯|好|好吧|哦]", "[谢|谢啦|谢了|感谢感谢]", "[在|在么|在吗在吗]", "[拜|88|白白]", "[ok|okk|好滴]",
              "[没事|没事了|不用了]", "[嗨|哈喽][～|]", "[几点|啥时候]下班", "[账号|帐号]登不上"],
}

# ---------------------------------------------------------------- one-word hinges
# The same frame around a short request: only the request decides the intent (改地址 vs 查物流).
HINGE_FRAMES = ["订单{ord}，{X}", "{X}，订单号{ord}", "{p}那单，{X}", "我{ago}买的{p}，{X}", "麻烦{X}",
                "帮我{X}[一下|下|]", "{X}[，谢谢|，麻烦了|，急]", "[在吗|你好|亲]，{X}", "[那个|就是]{p}，{X}",
                "{X}[吧|啊|呢|]，{p}", "手机{phone}[的单|下的单]，{X}", "[请问|问下]能{X}吗",
                "{c}{p}[的订单|那个单子]，{X}", "订单号：{ord} {X}"]
HINGE_WORDS = {
    "return_request": ["退货", "退掉", "申请退货", "办退货", "退回去", "走退货"],
    "exchange_request": ["换货", "换个码", "换个颜色", "换成{sz2}", "换一{unit}新的", "申请换货"],
    "refund_status": ["查退款", "看看退款到哪了", "查下退款进度", "问退款什么时候到", "催退款"],
    "order_status": ["查订单状态", "看下订单状态", "查下订单进度", "看看订单处理了没", "确认下单子成功没"],
    "logistics_tracking": ["查物流", "查快递", "看下物流", "查下包裹到哪了", "跟踪快递", "要快递单号"],
    "urge_delivery": ["催发货", "催一下发货", "加急发货", "尽快发货", "让仓库快点发"],
    "cancel_order": ["取消订单", "取消掉", "把订单撤了", "作废订单", "撤单"],
    "change_address": ["改地址", "改收货地址", "改收件人电话", "换个收货地址", "改下收件人"],
    "invoice_request": ["开发票", "开张发票", "补开发票", "开专票", "改发票抬头"],
    "payment_issue": ["处理支付失败", "查下重复扣款", "查下扣款", "换个支付方式"],
    "product_inquiry": ["问下材质", "问下尺码", "问下有没有现货", "问下保修", "问下怎么用"],
    "complaint": ["投诉", "投诉快递员", "投诉客服", "要个说法", "要赔偿"],
    "coupon_promotion": ["领优惠券", "用优惠券", "申请价保", "补差价", "问下有啥活动"],
    "human_agent": ["转人工", "找人工客服", "接人工", "找真人客服", "转接人工"],
    "other": ["改登录密码", "问下营业时间", "注销账号", "问下实体店在哪"],
}

# ---------------------------------------------------------------- multi-clause messages
# A side topic that is settled or set aside, then the real request: the keywords of the side
# clause belong to another intent and must not decide. {MAIN} is the request.
SIDE_CLAUSES = {
    "refund_status": ["上次的退款已经到账了", "上回退款挺快的"],
    "logistics_tracking": ["快递已经收到了", "包裹昨天就签收了", "东西是收到了"],
    "invoice_request": ["发票已经收到了", "发票的事不急", "发票之后再说"],
    "change_address": ["地址是对的", "地址没问题", "收货地址不用改"],
    "order_status": ["订单我看过了"],
    "coupon_promotion": ["优惠券已经用了", "活动价我知道"],
    "payment_issue": ["钱已经付了", "付款是成功的"],
    "complaint": ["我不是来投诉的", "不是要投诉你们"],
    "human_agent": ["不用转人工", "你能处理就行"],
}
# A parcel already received contradicts these requests, so that side topic is not put before them.
SIDE_EXCLUDE = {"logistics_tracking": {"urge_delivery", "cancel_order", "change_address", "order_status"}}
SIDE_JOIN = ["，", "，但是", "，不过", "，现在是", "，这次是", "。另外", "，主要是", "，我就想"]

# Run-on messages: clauses strung together with spaces or commas, no final punctuation.
RUN_ON_LEADS = ["我跟你说", "是这样的", "情况是这样", "先说好", "我就直说了", "不好意思啰嗦一下",
                "我也不知道该找谁", "刚看了一下", "我看了半天", "我老婆让我问问"]

# ---------------------------------------------------------------- English and pinyin
EN_TEMPLATES = {
    "return_request": ["I want to return this[| item| {p}]", "how do I return it", "return please", "can i return the {p}",
                       "{p} not good, I want return"],
    "exchange_request": ["can I exchange [it|the size] for {sz2}", "wrong size, exchange pls", "need a different color",
                         "exchange for a new one please"],
    "refund_status": ["where is my refund", "refund still not received", "when will I get my money back",
                      "refund status?", "my refund pls check"],
    "order_status": ["order status?", "is my order confirmed", "what's the status of order {ord}",
                     "did my order go through"],
    "logistics_tracking": ["where is my package", "pls send the tracking no.", "parcel not moving for {days}",
                           "package says delivered but I didn't get it", "track my parcel {track}"],
    "urge_delivery": ["please ship asap", "why not shipped yet, hurry up", "ship it today please",
                      "still not shipped??"],
    "cancel_order": ["cancel my order[| please| {ord}]", "I want to cancel", "pls cancel, not needed anymore"],
    "change_address": ["change my address to {addr}", "wrong address, pls update", "need to change the delivery address"],
    "invoice_request": ["can I get an invoice", "invoice please, company {company}", "need a receipt for reimbursement"],
    "payment_issue": ["payment failed", "charged twice", "can't pay with {pay}", "money deducted but order unpaid"],
    "product_inquiry": ["is this in stock", "what size should I get", "is it original", "what material is it",
                        "does the {p} have warranty"],
    "complaint": ["terrible service, I want to complain", "this is a scam", "worst customer service ever",
                  "I will report you"],
    "coupon_promotion": ["any discount?", "coupon not working", "is there a promo code", "any sale now"],
    "human_agent": ["real person please", "talk to a human", "transfer to agent", "no bot please"],
    "other": ["hi", "thanks a lot", "ok got it", "bye", "what time do you close"],
}
PINYIN = {"退货": "tuihuo", "快递": "kuaidi", "发票": "fapiao", "退款": "tuikuan", "物流": "wuliu",
          "地址": "dizhi", "取消": "quxiao", "客服": "kefu", "人工": "rengong", "发货": "fahuo",
          "换货": "huanhuo", "投诉": "tousu", "优惠": "youhui", "订单": "dingdan"}

# More typos of pinyin input (same or close sound) and spoken spellings.
MORE_HOMOPHONES = [("改", "该"), ("催", "崔"), ("物流", "物留"), ("快点", "快滴"), ("觉得", "觉的"),
                   ("收到", "收道"), ("这么", "介么"), ("不是", "不系"), ("能不能", "能8能"),
                   ("投诉", "投述"), ("客服", "课服"), ("查", "茶"), ("发票", "发飘"), ("包裹", "包果"),
                   ("退", "腿"), ("换", "还"), ("已经", "已近"), ("到", "倒"), ("没有", "莫有"),
                   ("一样", "一杨"), ("麻烦", "麻番"), ("时候", "时侯"), ("怎么", "肿么"), ("你们", "你门"),
                   ("还没", "还木"), ("为什么", "为啥"), ("什么", "什莫"), ("可以", "可以可以"), ("好", "hao")]

# ---------------------------------------------------------------- more registers
MORE_OPENERS = {
    "polite": ["麻烦您了，", "打扰一下哈，", "亲爱的客服，", "您好呀，", "辛苦问一下，", "不好意思哈，", "请问一下，"],
    "neutral": ["哎，", "我问一下，", "那啥，", "问个事，", "咨询一下，", "急问，", "在？"],
    "angry": ["什么玩意儿，", "坑爹啊，", "我真是醉了，", "你们是不是有病，", "再说最后一遍，", "我忍很久了，",
              "受不了了，"],
}
MORE_CLOSERS = {
    "polite": ["，麻烦您了", "，谢谢哈", "，感谢感谢", "，有劳了", "，辛苦啦🙏", "，谢谢您嘞"],
    "neutral": ["，在线等，急", "，速回", "，回一下", "，看到回复"],
    "angry": ["，别让我说第二遍", "，不然差评", "，气死了😡", "，搞快点", "，没完了是吧"],
}

# Order numbers, addresses and product descriptions written the ways shops and customers do.
ORDER_FORMS = ["{ord}", "订单号：{ord}", "单号{ord}", "#{ord}", "No.{ord}", "订单编号 {ord}", "订单尾号{tail}"]
PRODUCT_FORMS = ["{p}", "{c}{p}", "{c}的{p}", "那{unit}{p}", "{p}（{c}，{sz}）", "颜色分类：{c} {p}", "{p} {sz}"]
PROVINCES = ["广东省", "浙江省", "江苏省", "四川省", "湖北省", "山东省", "河南省", "福建省", "湖南省", "陕西省"]

# ---------------------------------------------------------------- more dialogues
# Answers to the agent's question whose intent only the question gives.
OK_DO = ["行，[弄|办]吧", "那就这样[办|吧]", "可以，[帮我|麻烦]处理下", "好，就这么[办|弄]", "嗯，[帮我|你]弄一下",
         "那[麻烦|劳驾]你了", "可以可以", "就按你说的"]
WHEN = ["什么时候[能好|能弄好|有结果]", "[几号|哪天]能[好|到]", "大概[啥时候|什么时候]", "还要等几天"]
WHICH_ONE = ["哪个[好|合适]", "[选|拿]哪个", "[你|你们]推荐哪个", "有啥区别"]
AGAIN = ["又[这样|来了]", "怎么又[是这样|出问题了]", "[又一次|第二回]了", "每次都[这样|出事]"]

# (label, exchanges, finals) as lexicon.SCENARIOS; finals "@POOL" name a pool of generate.POOLS.
SCENARIOS = [
    # a bare order number answers what the agent asked for
    ("refund_status", [(["退款[还没到|一直没到]", "我的钱[还没退|怎么还没回来]"], ["亲，麻烦提供一下订单号，帮您查退款"])],
     ["{ord}", "订单{ord}", "单号是{ord}"]),
    ("cancel_order", [(["这单我不想要了", "刚才那单[拍错了|不要了]"], ["亲，麻烦发一下要取消的订单号"])],
     ["{ord}", "{ord}，还没发货", "就这个{ord}"]),
    ("logistics_tracking", [(["东西[还在路上吗|到哪了]", "[包裹|快递]怎么还没来"], ["亲，麻烦提供一下订单号，帮您查物流"])],
     ["{ord}", "订单{ord}", "{track}"]),
    ("invoice_request", [(["上个月的单要开票", "要补一张发票"], ["亲，请提供要开票的订单号"])],
     ["{ord}", "订单号{ord}，抬头{company}"]),
    # accepting what the agent offered takes that action's intent
    ("urge_delivery", [(["[我|]{ago}买的还没发", "订单一直待发货"], ["亲，可以帮您催一下仓库加急，需要吗？"])], ["@OK_DO", "要", "催吧"]),
    ("change_address", [(["快递员说地址不对", "地址好像少写了门牌"], ["亲，订单还没出库，可以帮您改地址，需要吗？"])],
     ["@OK_DO", "改吧"]),
    ("human_agent", [(["这事挺复杂的", "我的问题有点麻烦"], ["亲，需要为您转接人工客服吗？"])], ["@OK_DO", "转吧", "要"]),
    ("invoice_request", [(["公司要报销", "买的{p}要报账"], ["亲，需要给您开电子发票吗？"])], ["@OK_DO", "开吧", "要，开单位的"]),
    ("cancel_order", [(["{p}[等不了了|不想等了]", "这单要等多久才发"], ["亲，还要{days}才能发，或者可以帮您取消订单"])],
     ["那取消吧", "@OK_DO", "@NOT_WANT"]),
    ("coupon_promotion", [(["我{ago}买的{p}降价了", "{p}现在便宜了{k}块"], ["亲，可以帮您申请价保退差价，需要吗？"])],
     ["@OK_DO", "要的", "申请吧"]),
    ("exchange_request", [(["{p}[大了|小了]点", "{p}[尺码|码数]不合适"], ["亲，可以帮您换成{sz2}，要换吗？"])],
     ["@OK_DO", "换", "要换"]),
    ("return_request", [(["{p}{rret}", "{p}收到了不太满意"], ["亲，可以七天无理由退货，要帮您申请吗？"])],
     ["@OK_DO", "申请吧", "要，退了吧"]),
    # "when" after different actions
    ("refund_status", [(["退货寄回去了", "退货单号填好了"], ["亲，仓库签收后就会退款"])], ["@WHEN", "@HOW_LONG"]),
    ("order_status", [(["预售的{p}[买了|拍了]", "我拍了预售款"], ["亲，预售商品按活动规则发货"])], ["@WHEN", "具体几号发"]),
    ("invoice_request", [(["发票申请提交了"], ["亲，发票会在确认收货后开具"])], ["@WHEN"]),
    ("exchange_request", [(["换货的{p}寄回去了"], ["亲，收到退回件后会给您寄新的"])], ["@WHEN", "新的多久寄出"]),
    ("logistics_tracking", [(["快递显示到了{city}"], ["亲，正在等待派送"])], ["@WHEN", "今天能送到吗"]),
    # "which one" only in pre-sale questions; "again" as a complaint
    ("product_inquiry", [(["{p}有两个款", "{p}标准版和Pro版"], ["亲，两款配置不一样，详情页有对比"])], ["@WHICH_ONE"]),
    ("complaint", [(["{p}又发错了", "又是坏的"], ["亲，非常抱歉，马上为您处理"])], ["@AGAIN", "你们到底有没有人管"]),
    # hinge: the same context, a different last word
    ("change_address", [(["订单{ord}"], ["亲，请问需要帮您做什么？"])], ["改下地址吧", "帮忙改一下地址", "这单地址要改"]),
    ("logistics_tracking", [(["订单{ord}"], ["亲，请问需要帮您做什么？"])], ["查下物流吧", "帮忙看下物流", "这单快递到哪了"]),
    ("cancel_order", [(["订单{ord}"], ["亲，请问需要帮您做什么？"])], ["取消吧", "帮我取消掉", "这单不要了，取消"]),
    ("invoice_request", [(["订单{ord}"], ["亲，请问需要帮您做什么？"])], ["开张票吧", "帮忙开个发票", "这单要开发票"]),
    ("urge_delivery", [(["订单{ord}"], ["亲，请问需要帮您做什么？"])], ["催下发货吧", "帮忙催一下", "这单快点发"]),
    ("refund_status", [(["订单{ord}"], ["亲，请问需要帮您做什么？"])], ["查下退款吧", "这单退款到哪了"]),
    # three exchanges: the decisive fact is in the first or second one
    ("cancel_order", [(["我的{p}能发了吗"], ["亲，还在仓库排队"]), (["要排多久"], ["亲，大概还要{days}"])],
     ["那我不等了", "@NOT_WANT", "算了，别发了"]),
    ("return_request", [(["{p}收到了"], ["亲，用着还满意吗？"]), (["{rret}"], ["亲，很抱歉，您看怎么处理？"])],
     ["@NOT_WANT", "寄回去吧"]),
    ("logistics_tracking", [(["{p}发了吗"], ["亲，{ago}就发出了"]), (["那到哪了"], ["亲，在{city}{tplace}"])],
     ["@STILL_NOT", "都{days}了还在那", "@HURRY"]),
    ("urge_delivery", [(["{p}发了吗"], ["亲，还没有发出"]), (["为什么"], ["亲，仓库在备货"])],
     ["@HURRY", "我急用", "今天必须发"]),
    # distractors: an explicit last turn wins over the context
    ("invoice_request", [(["退款到了吗"], ["亲，已经原路退回了"])], ["好的，另外要开张发票", "行，那发票怎么开"]),
    ("other", [(["快递到哪了"], ["亲，已经在派送了，今天能到"])], ["@ACK", "好的，那我等着"]),
    ("other", [(["能换货吗"], ["亲，已经给您登记换货了"])], ["@ACK", "好嘞，辛苦"]),
    ("complaint", [(["我的快递呢"], ["亲，快递员说放门口了"])], ["他根本没送，我要投诉他", "投诉这个快递员"]),
    ("payment_issue", [(["{p}下单了"], ["亲，订单还是待付款状态哦"])], ["付不了啊", "一直付款失败", "{pay}付不上"]),
    ("human_agent", [(["我的退款有问题", "换货被拒了"], ["亲，请描述一下具体情况"])], ["@GIVEUP", "你处理不了，找个人"]),
    ("coupon_promotion", [(["{p}多少钱"], ["亲，现在是{amt}元"])], ["有券吗", "能便宜吗", "有活动不"]),
    ("product_inquiry", [(["{p}还有吗"], ["亲，有现货的"])], ["{c}有吗", "{sz}呢", "质量咋样"]),
]
