"""Word lists the fake teacher combines into instructions, inputs and outputs.

Sizes matter more than elegance: an instruction draws several independent
slots, so the product of these lists keeps thousands of replies mostly novel
under a ROUGE-L threshold of 0.7.
"""

from __future__ import annotations


def _vocab(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.replace("\n", "|").split("|") if item.strip())


SUBJECTS = _vocab("""
the water cycle | compound interest | the French Revolution | remote work | sourdough baking | password managers
photosynthesis | electric cars | the printing press | sleep hygiene | urban beekeeping | plate tectonics
inflation | the immune system | jazz improvisation | minimalism | the Roman aqueducts | public libraries
solar panels | the stock market | volunteering | coral reefs | the Silk Road | composting | chess openings
machine translation | the placebo effect | credit scores | marathon training | black holes | fast fashion
the Apollo program | microplastics | container shipping | meditation | the metric system | vaccines
open-source software | tidal energy | the Great Depression | houseplants | cryptocurrency | food deserts
the human heart | wind turbines | medieval castles | gig economy jobs | ocean currents | recycling plastics
the Olympic Games | daylight saving time | antibiotics | rainforest canopies | the Renaissance | supply chains
public transport | the periodic table | jet lag | noise pollution | desert ecosystems | handwriting
intermittent fasting | the Cold War | bread fermentation | volcanoes | social media algorithms | urban gardens
board games | homeschooling | honeybees | nuclear fusion | freelance taxes
the Internet of Things | language learning | glaciers | museums | carbon offsets | sleep cycles
the Great Barrier Reef | paper money | impressionist painting | online privacy | tea ceremonies
first aid | rent control | spaced repetition | the gold standard | migratory birds | urban heat islands
cooperative games | the Industrial Revolution | tax brackets | coffee roasting | lighthouse keepers
knitting | bike lanes | ancient Egyptian writing | weather forecasting | the Fibonacci sequence
dog training | unit testing | the circular economy | folk tales | emergency savings | typography
monsoon seasons | mountain rescue | organic farming | the Byzantine Empire | electric grids | fermentation
""")

ASPECTS = _vocab("""
the history of | common myths about | the economics of | the main risks of | the ethics of
the future of | everyday benefits of | the science behind | beginner mistakes with | the environmental impact of
the cultural role of | surprising facts about | the hidden costs of | local regulations on | the early days of
""")

AUDIENCES = _vocab("""
a ten-year-old | a new employee | a retired teacher | a first-year student | a busy parent | a skeptical investor
a tourist | a non-native speaker | a software engineer | a farmer | a nurse on night shifts | a teenager
a small business owner | a group of seniors | a high school class | a city council member | a journalist
a visiting scientist | someone who has never used a computer | a professional chef | a football coach
""")

TONES = _vocab("""
formal | playful | persuasive | sympathetic | humorous | neutral | enthusiastic | concise | poetic | diplomatic
optimistic | skeptical | warm | urgent | nostalgic | dry | encouraging
""")

GENRES = _vocab("""
limerick | haiku | short story | cover letter | product review | toast | tweet | press release | sonnet
blog post introduction | fable | motivational speech | diary entry | newsletter paragraph | riddle
podcast intro | radio advertisement | wedding speech | bedtime story | opinion column | eulogy | rap verse
""")

DOCUMENTS = _vocab("email | letter | memo | text message | note | announcement | apology | invitation | reminder")

RECIPIENTS = _vocab("""
a landlord | a new neighbour | the school principal | a hiring manager | a customer who was overcharged
the project team | an old friend | the city library | a supplier | the football club members | a grandparent
""")

EVENTS = _vocab("""
a job interview | a first marathon | a family reunion | a product launch | a house move | a charity bake sale
a science fair | a power outage | a wedding | a hackathon | a school trip | a team offsite | a book club meeting
a camping weekend | a retirement party | a cooking class | a community cleanup | a birthday surprise
""")

PEOPLE = _vocab("""
a nurse | a bakery owner | a chess coach | a park ranger | a taxi driver | a librarian | a pilot
a history teacher | a beekeeper | an astronaut | a plumber | a tailor | a marine biologist | a barista
a museum guide | a retired sailor | a startup founder | a violin maker | a zookeeper | a night-shift baker
a firefighter | a tax advisor | a potter | a mountain guide | a data analyst | a florist | a street musician
""")

VENTURES = _vocab("""
a small bakery | a bicycle repair shop | a podcast about history | a vegan food truck | a language school
a pet-sitting service | a board game cafe | a tutoring business | a mobile car wash | a plant nursery
a second-hand bookshop | a yoga studio | a coding bootcamp | a craft brewery | a cleaning company
""")

PRODUCTS = _vocab("""
a reusable water bottle | noise-cancelling headphones | a folding e-bike | a smart thermostat | a cast-iron pan
a standing desk | a solar phone charger | hiking boots | a sleep tracker | a language-learning app
a mechanical keyboard | a rice cooker | a kids' science kit | an ergonomic chair | a budgeting spreadsheet
""")

OBJECTS = _vocab("""
an old umbrella | a lighthouse | a coffee mug | a library book | a traffic light | a rusty bicycle
a houseplant | a grandfather clock | a paper airplane | a lost glove | a vending machine | a snowman
""")

TEXT_KINDS = _vocab("""
sentence | paragraph | email | customer review | headline | tweet | news article | product description
cover letter | text message | instruction manual excerpt | speech opening | recipe introduction
""")

LANGUAGES = _vocab("French | Spanish | German | Italian | Portuguese | Dutch | Swedish | Polish | Turkish | Japanese")

PROCESSES = _vocab("""
a refrigerator | a credit card payment | a bill becoming law | a search engine | a heat pump
a vaccine trial | an elevator | a bank loan | a solar eclipse | a wind turbine | a package delivery
a blood donation | a jury trial | a compiler | a dishwasher | a job application | an election count
""")

QUESTIONS = _vocab("""
why is the sky blue? | what makes a good friend? | how do you stay motivated? | is it worth learning Latin?
what is the best way to learn a new skill? | why do we dream? | how should cities plan for heat waves?
what makes a story memorable? | should homework be abolished? | how do you handle criticism?
""")

DEBATES = _vocab("""
a four-day work week | banning cars from city centres | school uniforms | universal basic income
nuclear power | year-round schooling | a sugar tax | remote-only companies | lowering the voting age
""")

DOMAINS = _vocab("cooking | football | gardening | orchestras | sailing | carpentry | traffic | a kitchen | a theatre play")

LABEL_SETS: tuple[tuple[str, ...], ...] = (
    ("Positive", "Negative"), ("Positive", "Negative", "Neutral"), ("Spam", "Not spam"),
    ("Fact", "Opinion"), ("Formal", "Informal"), ("True", "False"), ("Sarcastic", "Sincere"),
    ("Question", "Statement"), ("Urgent", "Not urgent"), ("Complaint", "Praise", "Question"),
    ("Fiction", "Nonfiction"), ("Relevant", "Irrelevant"), ("Agree", "Disagree", "Neutral"),
    ("Safe", "Unsafe"), ("Easy", "Medium", "Hard"), ("Boring", "Interesting"), ("Urgent", "Routine", "Spam"),
    ("Helpful", "Unhelpful"), ("Polite", "Rude"), ("Clickbait", "Informative"), ("Advice", "Anecdote", "Joke"),
)

ITEM_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("animal", ("Mammal", "Bird", "Reptile", "Fish")),
    ("food", ("Fruit", "Vegetable", "Grain", "Dairy")),
    ("news headline", ("Politics", "Sports", "Science", "Business")),
    ("support ticket", ("Billing", "Technical", "Account", "Other")),
    ("book title", ("Mystery", "Romance", "Science fiction", "History")),
    ("job posting", ("Engineering", "Sales", "Healthcare", "Education")),
    ("sentence", ("Declarative", "Interrogative", "Imperative", "Exclamatory")),
    ("musical instrument", ("String", "Wind", "Percussion", "Keyboard")),
)

FEATURES = _vocab("""
a spelling mistake | a question | a date | a person's name | a price | a comparison | a metaphor | a request
""")

LANGS = _vocab("Python | JavaScript | Rust | Go | Java | C | Ruby | Kotlin | TypeScript | Haskell | Bash | C#")

CODE_TASKS = _vocab("""
reverses a linked list | checks whether a string is a palindrome | counts the vowels in a sentence
merges two sorted lists | removes duplicate words from a text | finds the second largest number in a list
converts Celsius to Fahrenheit | validates an email address | flattens a nested list | computes a factorial
returns the most common character in a string | splits a bill between friends | rotates a matrix by 90 degrees
parses a date in ISO format | groups words that are anagrams | finds the longest common prefix of some words
checks whether brackets in an expression are balanced | counts the words in each line of a text
""")

SQL_TASKS = _vocab("""
finds the five customers who spent the most last year | counts orders per country
lists employees hired after 2020 with their managers | finds products that were never ordered
computes the average rating per book | returns the busiest hour of the day for a shop
""")

REGEX_TARGETS = _vocab("""
UK postcodes | dates written as DD/MM/YYYY | hexadecimal colour codes | US phone numbers
words that start and end with the same letter | prices in euros | IPv4 addresses | hashtags
""")

PLACES = _vocab("""
Lisbon | a mountain village | Kyoto | the Scottish Highlands | Buenos Aires | a small coastal town | Nairobi
Reykjavik | the Amalfi Coast | Montreal | a national park | Hanoi | Vienna | Cape Town | Oaxaca | Tasmania
""")

TRAVELERS = _vocab("a family with two kids | a solo backpacker | a retired couple | two students | a wheelchair user")

BUDGETS = _vocab("tight | moderate | generous | student")

GOALS = _vocab("""
run a 10k race | learn basic Spanish | save for a holiday | read more books | start a vegetable garden
get better sleep | learn to play the guitar | reduce screen time | cook at home more often | learn to swim
prepare for a coding interview | declutter an apartment | write a novel | improve public speaking
""")

TIMEFRAMES = _vocab("a month | six weeks | three months | a year | two weeks | one semester")

MEALS = _vocab("breakfast | lunch | dinner | picnic | three-course | brunch")

OCCASIONS = _vocab("a rainy Sunday | a birthday party | a work potluck | a first date | a holiday dinner | a camping trip")

DIETS = _vocab("a vegetarian | someone with a nut allergy | a diabetic guest | a picky child | a marathon runner")

PROBLEMS = _vocab("""
procrastination | a noisy neighbour | burnout | a tight deadline | stage fright | loneliness after a move
a difficult coworker | money worries | writer's block | a long commute
""")

DECISIONS = _vocab("""
changing careers | adopting a dog | buying an electric car | moving abroad | going back to university
starting a business | renting out a spare room | switching to a standing desk
""")

CHOICES = _vocab("""
working from home | living in a big city | renting versus buying | learning online | taking a gap year
using a credit card | car sharing | a plant-based diet
""")

ENTITIES = _vocab("dates | people's names | place names | prices | company names | email addresses | measurements")

ROLES = _vocab("a junior accountant | a nurse | a barista | a data scientist | a warehouse manager | a teacher")

SCIENCE_TOPICS = _vocab("density | static electricity | plant growth | sound waves | magnetism | surface tension")

STATS = _vocab("mean | median | range | sum of the squares | product | largest gap between neighbours")

UNITS: tuple[tuple[str, str], ...] = (
    ("kilometres", "miles"), ("pounds", "kilograms"), ("litres", "gallons"), ("inches", "centimetres"),
    ("hours", "minutes"), ("square metres", "square feet"), ("cups", "millilitres"), ("knots", "km per hour"),
)

VEHICLES = _vocab("train | cyclist | ferry | delivery van | hiker | river barge")

CONSTRAINTS = _vocab("""
in under 60 words | in three sentences | using simple words | with one concrete example | as a numbered list
without technical jargon | in the form of a short dialogue | in two short paragraphs | with a catchy title
as five bullet points | ending with a question | in the second person | with a surprising twist at the end
using at least one statistic | in a single long sentence | with a table of key points | as a step-by-step guide
mentioning one common mistake | as a letter to the reader | with a short summary at the top
""")

CONTEXTS = _vocab("""
For a school newsletter, | Before {event}, | In the voice of {person}, | For a podcast episode about {subject},
As a warm-up for {audience}, | For a local radio show in {place}, | On a postcard from {place},
For the back of a cereal box, | During a lunch break, | For a guided museum tour, | In a hurry,
As part of a training course for {role}, | For a community notice board, | In a text to {recipient},
""")

PURPOSES = _vocab("""
a beginner can follow it | it fits on a single index card | it could be read aloud in one minute
it convinces a doubtful reader | nobody feels left out | the main risk is obvious | it is easy to remember
a busy reader gets the point at once | it can be printed on a flyer | it sparks a discussion
""")

COUNTERFACTUALS = _vocab("""
the internet went offline for a week | cars had never been invented | everyone worked four days a week
nobody could lie | cities banned advertising | paper was as rare as gold | summer lasted all year
every school taught chess | people lived for two hundred years | money disappeared overnight
""")

GOODS = _vocab("notebooks | concert tickets | bags of rice | bicycle tyres | plant pots | train passes | coffee mugs")

MEASUREMENTS = _vocab("""
daily temperatures in {place} | test scores of a class | monthly electricity bills | marathon finishing times
weekly grocery costs | the heights of a basketball team | daily step counts | house prices on one street
""")

HOUSEHOLD_ITEMS = _vocab("a glass of water | kitchen foil | a balloon | two magnets | a torch | a plastic bottle")

SEASONS = _vocab("winter | the summer holidays | exam week | a heat wave | the rainy season | the first week of January")

INPUT_SENTENCES = _vocab("""
The delivery arrived two days late and the box was crushed, but the blender works perfectly.
Our team will meet on Thursday at 10 am to review the budget for next quarter.
I can't believe they charged me twice for the same concert ticket.
The museum's new wing opens to the public next month with free entry on weekends.
Honestly, this is the best pizza I have had in years, and the staff were lovely.
Congratulations! You have been selected for a free cruise; reply with your bank details.
Due to heavy rain, the football match has been moved to Sunday afternoon.
The hotel room was clean, though the walls were thin and the street was noisy at night.
Please remember to bring your own water bottle to the hike on Saturday.
Scientists found that the lake's temperature rose by two degrees over the last decade.
The new phone update drains my battery faster than before.
Can you tell me whether the library is open on public holidays?
Our bakery now offers gluten-free bread every Friday morning.
The city council approved a plan to add twelve kilometres of bike lanes.
He said the report would be ready by noon, but it is already three o'clock.
The recipe calls for two cups of flour, one egg and a pinch of salt.
I think remote meetings are less productive than meeting in person.
The train from Lyon to Paris takes about two hours.
Thanks for the quick reply, the replacement part fits perfectly.
Water boils at a lower temperature at high altitude.
""")

OUTPUT_OPENERS = _vocab("""
In short, | The key point is that | A simple way to put it: | Here is a clear answer. | To begin with,
Put simply, | The main idea is that | Start with this: | A good answer is that | Most importantly,
""")

OUTPUT_FACTS = _vocab("""
small, regular steps work better than rare big efforts | the details depend on the context and the people involved
it helps to compare two or three options before deciding | the best results come from planning ahead
clear language makes the message easier to trust | each part has a purpose that supports the whole
costs and benefits should both be written down | a short example often explains more than a long definition
the first attempt rarely needs to be perfect | feedback from others reveals what you cannot see yourself
habits form faster when they are tied to an existing routine | numbers should be checked twice
the simplest explanation is usually the right place to start | safety always comes before speed
""")

SHORT_JUNK = _vocab("Summarize this. | Explain more. | Make it better. | Fix the text. | Continue. | Do it again. | Try harder.")

BLACKLISTED_JUNK = (
    "Draw a simple sketch that shows {topic}.",
    "Describe the image of {place} shown above.",
    "Create a flowchart for how to {goal}.",
    "Plot a graph of {subject} over the last ten years.",
    "Make a map of the best walking routes in {place}.",
    "Watch the video about {topic} and summarize it.",
    "Listen to the audio clip and write down what {person} says.",
    "Open the attached file and list the errors in it.",
)

NAMES = _vocab("""
Amira | Tomasz | Keiko | Lucas | Priya | Mateo | Ingrid | Kwame | Sofia | Hamid | Elena | Diego | Aiko | Jonas
Fatima | Oliver | Mei | Rafael | Nadia | Samuel | Leila | Bruno | Chloe | Arjun | Greta | Yusuf | Hana | Pablo
Zainab | Felix | Olga | Tariq | Ines | Kenji | Marta | Desmond | Lucia | Emeka | Freya | Omar | Valentina | Ravi
""")

DETAILS = (
    "mentioning {subject}", "with a nod to {domain}", "that could be shared before {event}",
    "drawing on what {person} knows", "with a reference to {place}", "that avoids clichés about {subject}",
    "that ends by mentioning {object}", "written as {name} would say it",
)

FOLLOW_UPS = (
    "Keep the answer {constraint}.", "Answer as if talking to {name}, {person} from {place}.",
    "Use an example from {domain}.", "Mention at least one thing {audience} might not know.",
    "Give the short answer first, then the reasoning.", "Finish with a tip for {name}.",
)

CLASSIFICATION_NOTES = (
    "The texts were collected by {name}, {person} in {place}.", "If nothing fits, pick the closest label for {name}.",
    "Explain each label to {audience} in one sentence.", "The examples come from {venture}.",
)

# Instruction cores: a verb phrase with at least one slot drawn from a long list. Modifiers
# (context, audience, format, purpose) are added independently, so two instructions share
# most of their words only when they share a core, its slots and their modifiers.
CORES = (
    "Write a {tone} {genre} about {topic}", "Compose a {genre} that {person} could read aloud at {event}",
    "Draft a {tone} {document} to {recipient} about {event}", "Write the opening paragraph of a {genre} set in {place}",
    "Create a short dialogue between {person} and {person2} about {topic}",
    "Write a product description for {product} sold by {venture}", "Come up with {n} names for {venture} inspired by {subject}",
    "Write a {genre} told from the point of view of {object} in {place}",
    "Invent a slogan for {venture} that mentions {subject}",
    "Rewrite the {text_kind} about {subject} in a more {tone} register",
    "Paraphrase the given {text_kind} from {person}", "Shorten this {text_kind} about {event} to {num} words",
    "Correct the grammar in a {text_kind} that {person} wrote about {topic}",
    "Translate the {text_kind} about {subject} into {language}", "Turn rough notes on {topic} into a {tone} {document}",
    "Explain {topic}", "Describe the main differences between {subject} and {subject2}",
    "Why do people in {place} disagree about {topic}?", "Describe how {process} works, step by step, for {name}",
    "Give {n} little-known facts about {topic}", "Answer this question as {person} would: {question}",
    "Summarize the arguments {person} might make for and against {debate}", "Explain {topic} through an analogy from {domain}",
    "What would change if {counterfactual}?", "How did {subject} change daily life in {place}?",
    "Work out what {person} pays for {qty} {goods} at ${price} each, including a {pct}% tax",
    "A {vehicle} covers {dist} km between {place} and {place2} in {hours} hours; find its average speed",
    "Convert {amount} {unit_pair}", "Estimate how many months {person} needs to save ${big} at ${price} a month",
    "Find the {stat} of a list of {measurements}", "Write a {lang} function that {code_task}",
    "Explain, line by line, a {lang} snippet that {code_task}", "Find the bug in a {lang} function that {code_task}",
    "Port a {lang} function that {code_task} to {lang2}", "Write a SQL query for {venture} that {sql_task}",
    "Write a {lang} regular expression that matches {regex_target} in a {text_kind}", "Write unit tests in {lang} for a function that {code_task}",
    "Plan a {n}-day trip to {place} for {traveler} on a {budget} budget",
    "Create a weekly schedule for {person} who wants to {goal}", "Outline the steps to {goal} within {timeframe}",
    "Suggest a {meal} menu for {occasion} that suits {diet}", "Make a checklist for {person} preparing for {event}",
    "Design a study plan for learning about {subject} within {timeframe}",
    "Give advice to {person} who is struggling with {problem}", "What should {name}, {person}, consider before {decision}?",
    "Suggest {n} cheap ways to {goal}", "List the pros and cons of {choice} for {person}",
    "Compare {subject} and {subject2} in a table", "Extract all the {entity} mentioned in a {text_kind} about {event}",
    "Generate {n} interview questions for {role} applying to {venture}",
    "Suggest {n} discussion questions about {topic}", "Propose a home experiment about {science_topic} using {household_item}",
    "Tell the story of {event} in {place} in exactly {n} sentences", "Argue that {topic} deserves more attention",
    "Brainstorm {n} ideas for {venture} to attract customers during {season}",
    "Create a quiz with {n} questions on {topic}", "Write a short speech that {name}, {person}, gives at {event}",
    "Describe a typical day for {person} in {place}", "Critique a plan to {goal} within {timeframe}",
)

CLASSIFICATION_CORES = (
    "Classify each {text_kind} about {topic} as {labels}",
    "Decide whether a {text_kind} that {name} received from {person} about {topic} is {labels}",
    "Label each {text_kind} {name} wrote about {topic} as {labels}",
    "Sort each {item} mentioned in a {text_kind} by {name} about {place} into one of these groups: {groups}",
    "Check whether the {text_kind} {name} wrote about {topic} contains {feature}",
    "Tell whether a claim {name} heard about {topic} is {labels}",
    "Identify whether the {text_kind} {person} in {place} sent about {subject} is {labels}",
    "Judge whether a question from {name} about {topic} is easy or hard for {audience}",
    "Categorize each comment about {topic} on the website of {venture} as {labels}",
    "Tag each message in the inbox of {name}, {person}, about {event} as {labels}",
    "Say whether each review of {product} that {name} collected in {place} is positive or negative",
    "Predict whether {audience} would find a {text_kind} about {topic} boring or interesting",
    "Detect whether a reply from {person} to {name} about {event} sounds {tone}",
)
