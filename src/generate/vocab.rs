//! Static reference tables: regions with real administrative division codes, GB/T 4754
//! industry sections, names, carriers' number ranges, and the words sources are made of.
//! Every Chinese character here is in GBK (a test checks it), so persons.csv can carry it.

/// (province, short province name used in case numbers, city, district division codes, weight)
pub struct Region {
    pub province: &'static str,
    pub abbr: &'static str,
    pub city: &'static str,
    pub districts: &'static [u32],
    pub weight: f64,
}

macro_rules! region {
    ($p:expr, $a:expr, $c:expr, [$($d:expr),+], $w:expr) => {
        Region { province: $p, abbr: $a, city: $c, districts: &[$($d),+], weight: $w }
    };
}

pub const REGIONS: &[Region] = &[
    region!("北京市", "京", "北京市", [110101, 110105, 110108], 6.0),
    region!("上海市", "沪", "上海市", [310101, 310104, 310115], 6.0),
    region!("天津市", "津", "天津市", [120101, 120104], 3.0),
    region!("重庆市", "渝", "重庆市", [500103, 500106], 3.0),
    region!("广东省", "粤", "广州市", [440103, 440106], 5.0),
    region!("广东省", "粤", "深圳市", [440303, 440305, 440306], 6.0),
    region!("广东省", "粤", "东莞市", [441900], 3.0),
    region!("广东省", "粤", "佛山市", [440604, 440606], 3.0),
    region!("浙江省", "浙", "杭州市", [330102, 330106, 330110], 5.0),
    region!("浙江省", "浙", "宁波市", [330203, 330212], 3.0),
    region!("浙江省", "浙", "温州市", [330302, 330304], 2.0),
    region!("江苏省", "苏", "南京市", [320102, 320106], 4.0),
    region!("江苏省", "苏", "苏州市", [320505, 320506], 4.0),
    region!("江苏省", "苏", "无锡市", [320213, 320214], 2.0),
    region!("山东省", "鲁", "济南市", [370102, 370103], 3.0),
    region!("山东省", "鲁", "青岛市", [370202, 370203], 3.0),
    region!("福建省", "闽", "福州市", [350102, 350104], 2.0),
    region!("福建省", "闽", "厦门市", [350203, 350206], 2.0),
    region!("福建省", "闽", "泉州市", [350502, 350503], 2.0),
    region!("河南省", "豫", "郑州市", [410102, 410105], 3.0),
    region!("湖北省", "鄂", "武汉市", [420102, 420106], 3.0),
    region!("湖南省", "湘", "长沙市", [430102, 430104], 3.0),
    region!("四川省", "川", "成都市", [510104, 510107], 4.0),
    region!("陕西省", "陕", "西安市", [610102, 610113], 2.0),
    region!("河北省", "冀", "石家庄市", [130102, 130104], 2.0),
    region!("安徽省", "皖", "合肥市", [340102, 340104], 2.0),
    region!("江西省", "赣", "南昌市", [360102, 360103], 1.0),
    region!("辽宁省", "辽", "沈阳市", [210102, 210103], 2.0),
    region!("辽宁省", "辽", "大连市", [210202, 210203], 2.0),
    region!("吉林省", "吉", "长春市", [220102, 220103], 1.0),
    region!("黑龙江省", "黑", "哈尔滨市", [230102, 230103], 1.0),
    region!("山西省", "晋", "太原市", [140105, 140106], 1.0),
    region!("云南省", "云", "昆明市", [530102, 530103], 1.0),
    region!("贵州省", "贵", "贵阳市", [520102, 520103], 1.0),
    region!("广西壮族自治区", "桂", "南宁市", [450102, 450103], 1.0),
    region!("海南省", "琼", "海口市", [460105, 460106], 1.0),
    region!("内蒙古自治区", "蒙", "呼和浩特市", [150102, 150103], 1.0),
    region!(
        "新疆维吾尔自治区",
        "新",
        "乌鲁木齐市",
        [650102, 650103],
        1.0
    ),
    region!("甘肃省", "甘", "兰州市", [620102, 620103], 1.0),
];

/// GB/T 4754-2017 sections: letter, name, weight among SMEs, risk shift, trade words.
pub struct Industry {
    pub letter: &'static str,
    pub name: &'static str,
    pub weight: f64,
    pub risk: f64,
    pub words: &'static [&'static str],
}

pub const INDUSTRIES: &[Industry] = &[
    Industry {
        letter: "A",
        name: "农、林、牧、渔业",
        weight: 2.0,
        risk: 0.2,
        words: &["农业", "养殖", "果蔬种植"],
    },
    Industry {
        letter: "B",
        name: "采矿业",
        weight: 0.3,
        risk: 0.1,
        words: &["矿业", "石材"],
    },
    Industry {
        letter: "C",
        name: "制造业",
        weight: 18.0,
        risk: 0.0,
        words: &[
            "机械制造",
            "电子科技",
            "服装",
            "食品",
            "塑料制品",
            "五金制品",
            "包装材料",
        ],
    },
    Industry {
        letter: "D",
        name: "电力、热力、燃气及水生产和供应业",
        weight: 0.5,
        risk: -0.3,
        words: &["能源", "燃气"],
    },
    Industry {
        letter: "E",
        name: "建筑业",
        weight: 8.0,
        risk: 0.3,
        words: &["建筑工程", "装饰工程", "建设工程"],
    },
    Industry {
        letter: "F",
        name: "批发和零售业",
        weight: 30.0,
        risk: 0.0,
        words: &["贸易", "商贸", "百货", "建材", "日用品"],
    },
    Industry {
        letter: "G",
        name: "交通运输、仓储和邮政业",
        weight: 5.0,
        risk: 0.1,
        words: &["物流", "运输", "仓储"],
    },
    Industry {
        letter: "H",
        name: "住宿和餐饮业",
        weight: 9.0,
        risk: 0.35,
        words: &["餐饮管理", "酒店管理", "餐饮"],
    },
    Industry {
        letter: "I",
        name: "信息传输、软件和信息技术服务业",
        weight: 6.0,
        risk: -0.1,
        words: &["信息技术", "网络科技", "软件"],
    },
    Industry {
        letter: "J",
        name: "金融业",
        weight: 0.3,
        risk: 0.0,
        words: &["投资咨询"],
    },
    Industry {
        letter: "K",
        name: "房地产业",
        weight: 1.5,
        risk: 0.4,
        words: &["房地产经纪", "物业管理"],
    },
    Industry {
        letter: "L",
        name: "租赁和商务服务业",
        weight: 7.0,
        risk: 0.0,
        words: &["商务咨询", "广告", "企业管理"],
    },
    Industry {
        letter: "M",
        name: "科学研究和技术服务业",
        weight: 4.0,
        risk: -0.2,
        words: &["技术服务", "检测", "设计"],
    },
    Industry {
        letter: "N",
        name: "水利、环境和公共设施管理业",
        weight: 0.5,
        risk: -0.1,
        words: &["环保科技", "园林绿化"],
    },
    Industry {
        letter: "O",
        name: "居民服务、修理和其他服务业",
        weight: 5.0,
        risk: 0.1,
        words: &["家政服务", "汽车维修", "美容"],
    },
    Industry {
        letter: "P",
        name: "教育",
        weight: 1.5,
        risk: 0.0,
        words: &["教育咨询", "培训"],
    },
    Industry {
        letter: "Q",
        name: "卫生和社会工作",
        weight: 1.0,
        risk: -0.2,
        words: &["健康管理", "诊所"],
    },
    Industry {
        letter: "R",
        name: "文化、体育和娱乐业",
        weight: 1.5,
        risk: 0.2,
        words: &["文化传媒", "体育发展"],
    },
    Industry {
        letter: "S",
        name: "公共管理、社会保障和社会组织",
        weight: 0.0,
        risk: 0.0,
        words: &["服务中心"],
    },
    Industry {
        letter: "T",
        name: "国际组织",
        weight: 0.0,
        risk: 0.0,
        words: &["代表处"],
    },
];

/// Common surnames, most frequent first.
pub const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏",
    "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛", "闫", "段", "雷", "侯",
    "欧阳", "司马", "诸葛",
];

pub const GIVEN_MALE: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "帅", "旭", "宁", "龙", "林", "阳", "建", "国",
    "志", "文", "东", "海", "峰", "晨", "博", "毅", "振", "立", "成", "荣", "新", "春", "亮", "江",
];

pub const GIVEN_FEMALE: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "燕", "玲", "桂", "丹", "萍", "红", "婷",
    "雪", "琳", "晶", "颖", "慧", "莉", "倩", "欣", "悦", "佳", "璐", "瑶", "怡", "梅", "兰", "英",
    "华", "玉", "洁", "君", "月", "云", "春", "蓉",
];

/// Trade-name characters (字号) for enterprise names.
pub const BRAND_CHARS: &[&str] = &[
    "华", "兴", "鑫", "盛", "达", "源", "泰", "丰", "瑞", "祥", "恒", "通", "宏", "远", "佳", "诚",
    "信", "德", "安", "康", "利", "顺", "昌", "隆", "嘉", "和", "旺", "福", "金", "宝", "正", "新",
    "明", "天", "宇", "鼎", "辰", "海", "峰", "创", "思", "博", "智", "联", "众", "合", "益", "晟",
    "航", "凯", "腾", "越", "卓", "锦", "弘", "捷", "汇", "骏", "域", "森", "启", "润", "美", "优",
];

pub const COMPANY_SUFFIX: &[&str] = &["有限公司", "有限责任公司", "股份有限公司"];
pub const SOLE_SUFFIX: &[&str] = &["经营部", "商行", "店", "工作室"];

/// Mobile number prefixes by carrier: China Mobile, China Unicom, China Telecom.
pub const CMCC: &[u16] = &[
    134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 157, 158, 159, 178, 182, 183, 184, 187, 188,
    198,
];
pub const CUCC: &[u16] = &[130, 131, 132, 145, 155, 156, 166, 175, 176, 185, 186];
pub const CTCC: &[u16] = &[133, 149, 153, 173, 177, 180, 181, 189, 191, 199];

/// Carrier: 0 = China Mobile, 1 = China Unicom, 2 = China Telecom.
pub fn carrier_of_prefix(prefix: u16) -> u8 {
    if CUCC.contains(&prefix) {
        1
    } else if CTCC.contains(&prefix) {
        2
    } else {
        0
    }
}

/// How operators and their resellers spell their own names, by carrier.
pub const CARRIER_SPELLINGS: [&[&str]; 3] = [
    &[
        "中国移动",
        "中国移动",
        "中国移动",
        "移动",
        "CMCC",
        "China Mobile",
    ],
    &[
        "中国联通",
        "中国联通",
        "中国联通",
        "联通",
        "CUCC",
        "China Unicom",
    ],
    &[
        "中国电信",
        "中国电信",
        "中国电信",
        "电信",
        "CTCC",
        "China Telecom",
    ],
];

/// ICCID issuer codes after 8986, by carrier.
pub const ICCID_ISSUERS: [&[&str]; 3] = [
    &["00", "02", "04", "07"],
    &["01", "06", "09"],
    &["03", "11"],
];

pub const PRODUCTS: &[(&str, &[&str])] = &[
    ("operating", &["经营贷", "经营贷", "经营性贷款"]),
    ("tax", &["税易贷", "税贷"]),
    ("cashflow", &["流水贷", "流水贷"]),
    ("invoice", &["发票贷", "票e贷"]),
];

pub const CHANNELS: &[(&str, &[&str])] = &[
    ("app", &["APP", "App", "app", "手机银行"]),
    ("ebank", &["网银", "EBANK"]),
    ("miniprogram", &["小程序", "微信小程序"]),
    ("branch", &["线下", "柜面", "客户经理"]),
];

pub const EDUCATION: &[&str] = &["本科", "大专", "高中", "硕士", "初中及以下", "中专", "博士"];
pub const MARITAL: &[&str] = &["已婚", "已婚", "已婚", "未婚", "离异"];

pub const MEMO_IN: &[&str] = &["货款", "服务费", "往来款", "工程款", "销售收入", "退款"];
pub const MEMO_OUT: &[&str] = &["货款", "采购款", "房租", "水电费", "往来款", "运费", "借款"];

pub const RELATIONS: &[&str] = &["家人", "朋友", "同事", "客户", "其他"];
pub const CONTACT_REMARKS: &[&str] = &["总", "经理", "老板", "师傅", "姐", "哥"];

pub const CASE_TYPES: &[&str] = &[
    "买卖合同纠纷",
    "金融借款合同纠纷",
    "民间借贷纠纷",
    "劳动争议",
    "租赁合同纠纷",
    "服务合同纠纷",
    "建设工程施工合同纠纷",
];
pub const COURT_ROLES: &[&str] = &["被告", "被告", "原告", "被执行人"];

pub const SEGMENTS: &[&str] = &["小微企业", "个体工商户", "中型企业"];
pub const BRANCH_SUFFIX: &[&str] = &[
    "分行营业部",
    "高新支行",
    "开发区支行",
    "城东支行",
    "城西支行",
    "科技支行",
];

/// Public IPv4 first octets of the big Chinese networks.
pub const IP_FIRST: &[u8] = &[
    36, 39, 42, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116, 117, 119, 120, 121,
    122, 123, 124, 125, 171, 175, 180, 182, 183, 202, 211, 218, 219, 220, 221, 222, 223,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_character_is_gbk() {
        let mut all: Vec<&str> = Vec::new();
        for r in REGIONS {
            all.extend([r.province, r.city, r.abbr]);
        }
        for i in INDUSTRIES {
            all.push(i.name);
            all.extend(i.words);
        }
        for list in [
            SURNAMES,
            GIVEN_MALE,
            GIVEN_FEMALE,
            BRAND_CHARS,
            COMPANY_SUFFIX,
            SOLE_SUFFIX,
            EDUCATION,
            MARITAL,
            RELATIONS,
            CONTACT_REMARKS,
            SEGMENTS,
        ] {
            all.extend(list);
        }
        all.extend([
            "法定代表人",
            "股东",
            "财务负责人",
            "男",
            "女",
            "未知",
            "客户编号",
            "姓名",
            "性别",
            "证件号码",
            "出生日期",
            "年龄",
            "手机号码",
            "所属企业",
            "角色",
            "学历",
            "婚姻状况",
            "更新时间",
        ]);
        for s in all {
            let (_, _, bad) = encoding_rs::GBK.encode(s);
            assert!(!bad, "{s} is not encodable in GBK");
        }
    }

    #[test]
    fn industry_letters_are_the_twenty_sections() {
        let letters: String = INDUSTRIES.iter().map(|i| i.letter).collect();
        assert_eq!(letters, "ABCDEFGHIJKLMNOPQRST");
    }
}
